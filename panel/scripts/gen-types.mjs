// Generates src/schema.d.ts, the TypeScript types of the control plane's
// API, from its OpenAPI document (docs/openapi.json, itself generated from
// the Rust types in api/src and kept current by a control test).
// `npm run gen:types` writes it; schema.test.mjs fails when it is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

export const DOC = new URL("../../docs/openapi.json", import.meta.url);
export const OUT = new URL("../src/schema.d.ts", import.meta.url);

const HEADER =
  "// Generated from docs/openapi.json by `npm run gen:types` (scripts/gen-types.mjs): do not edit.\n\n";

/** The text of src/schema.d.ts for the current document. */
export async function generate() {
  const ast = await openapiTS(JSON.parse(readFileSync(DOC, "utf8")));
  return HEADER + astToString(ast);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(OUT, await generate());
}
