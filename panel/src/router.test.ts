import { describe, expect, it } from "vitest";
import { href, parse, type Route } from "./router";

describe("router", () => {
  it("parses every page and round-trips", () => {
    const routes: Route[] = [
      { page: "login" },
      { page: "functions" },
      { page: "function", name: "hello", tab: "overview" },
      { page: "function", name: "hello", tab: "executions" },
      { page: "function", name: "hello", tab: "usage" },
      { page: "function", name: "hello", tab: "settings" },
      { page: "execution", id: "0190abcd-0000-7000-8000-000000000001" },
      { page: "users" },
      { page: "audit" },
      { page: "account" },
    ];
    for (const r of routes) expect(parse(href(r))).toEqual(r);
  });

  it("defaults to the functions list and reports unknown paths", () => {
    expect(parse("")).toEqual({ page: "functions" });
    expect(parse("#/")).toEqual({ page: "functions" });
    expect(parse("#/nowhere")).toEqual({ page: "not-found", path: "/nowhere" });
    expect(parse("#/functions/a/b/c")).toEqual({ page: "not-found", path: "/functions/a/b/c" });
    expect(parse("#/users/x")).toEqual({ page: "not-found", path: "/users/x" });
  });
});
