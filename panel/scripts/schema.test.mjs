// The committed TypeScript types are those of the current API document: a
// field changed in the Rust model (api/src) without `npm run gen:types` fails
// here, as the document itself fails control's test without OLIN_BLESS.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { OUT, generate } from "./gen-types.mjs";

it("src/schema.d.ts is generated from docs/openapi.json", async () => {
  const committed = readFileSync(OUT, "utf8");
  expect(committed === (await generate()), "src/schema.d.ts is stale: run `npm run gen:types` in panel/").toBe(true);
});
