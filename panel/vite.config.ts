import preact from "@preact/preset-vite";
import { defineConfig } from "vitest/config";

// Built assets are embedded in the control binary and served at `/`.
export default defineConfig({
  plugins: [preact()],
  build: { outDir: "dist", emptyOutDir: true, assetsInlineLimit: 0, sourcemap: false },
  test: { environment: "node" },
});
