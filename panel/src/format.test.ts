import { describe, expect, it } from "vitest";
import { ago, bytes, count, deployed, micros, outcome, rate, time } from "./format";

describe("format", () => {
  it("sizes in binary units", () => {
    expect(bytes(812)).toBe("812 B");
    expect(bytes(12_595)).toBe("12.3 KiB");
    expect(bytes(4 * 1024 * 1024)).toBe("4.0 MiB");
    expect(bytes(-1)).toBe("-");
  });

  it("durations from microseconds", () => {
    expect(micros(85)).toBe("85 µs");
    expect(micros(1250)).toBe("1.25 ms");
    expect(micros(42_000)).toBe("42 ms");
    expect(micros(3_100_000)).toBe("3.1 s");
    expect(micros(null)).toBe("-");
  });

  it("counts and times", () => {
    expect(count(1234567)).toBe("1,234,567");
    expect(count(undefined)).toBe("-");
    expect(time("2026-11-30T09:12:03.123456Z")).toBe("2026-11-30 09:12:03");
    expect(time("2026-11-30T10:12:03+01:00")).toBe("2026-11-30 09:12:03");
    expect(time("not a time")).toBe("-");
  });

  it("relative times", () => {
    const now = new Date("2026-11-30T12:00:00Z");
    expect(ago("2026-11-30T12:00:00Z", now)).toBe("just now");
    expect(ago("2026-11-30T11:59:30Z", now)).toBe("30 s ago");
    expect(ago("2026-11-30T11:57:00Z", now)).toBe("3 min ago");
    expect(ago("2026-11-30T10:00:00Z", now)).toBe("2 h ago");
    expect(ago("2026-11-26T12:00:00Z", now)).toBe("4 d ago");
    expect(ago(null, now)).toBe("-");
  });

  it("outcomes and deployments in words", () => {
    expect(outcome("OK")).toEqual({ label: "OK", ok: true });
    expect(outcome("TIMEOUT")).toEqual({ label: "Timed out", ok: false });
    expect(outcome("SOMETHING_NEW").label).toBe("SOMETHING_NEW");
    expect(deployed(null)).toBe("not deployed");
    expect(deployed({ version: 3, canary_version: null, canary_percent: null })).toBe("v3");
    expect(deployed({ version: 3, canary_version: 4, canary_percent: 10 })).toBe("v3 + v4 (10%)");
  });

  it("call rates", () => {
    expect(rate(undefined)).toBe("none");
    expect(rate({ calls: 0, errors: 0 })).toBe("none");
    expect(rate({ calls: 1, errors: 0 })).toBe("1 call");
    expect(rate({ calls: 1234, errors: 0 })).toBe("1,234 calls");
    expect(rate({ calls: 12, errors: 1 })).toBe("12 calls, 1 failed");
  });
});
