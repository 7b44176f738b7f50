// Bundles azkeep with esbuild: ESM, code splitting, so lazily imported commands become chunks
// and `get-access-token` loads only what it needs.
import { build } from "esbuild";
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));


const entryPoints = {
  "cli/main": "src/cli/main.ts",
};
for (const [name, file] of Object.entries({
  "lib/index": "src/lib/index.ts",
  "lib/emulator": "src/emulator/index.ts",
})) {
  try {
    readFileSync(new URL(`../${file}`, import.meta.url));
    entryPoints[name] = file;
  } catch {
    /* entry not written yet */
  }
}
// The hot paths (`account get-access-token` through bin's fast lane, and the `az` shim) are
// built as single files without code splitting: every extra ES module costs a resolve, a read
// and a compile at start-up (measured in docs/benchmarks.md). npm dependencies stay external
// there (loaded from node_modules only on the rare paths that need them).
const fastEntryPoints = { "shim/az": "src/shim/az.ts", "cli/fast": "src/shim/cli-fast.ts" };

const common = {
  outdir: "dist",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: false,
  minify: false,
  legalComments: "none",
  chunkNames: "chunks/[name]-[hash]",
  // Native addon: loaded from node_modules at run time.
  external: ["@napi-rs/keyring", "playwright-core", "oidc-provider"],
  define: { __AZKEEP_VERSION__: JSON.stringify(pkg.version) },
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __azkeepCreateRequire } from 'node:module'; const require = __azkeepCreateRequire(import.meta.url);",
  },
  logLevel: "warning",
};

await build({ ...common, entryPoints, splitting: true });
await build({
  ...common,
  entryPoints: fastEntryPoints,
  splitting: false,
  external: [...common.external, ...Object.keys(pkg.dependencies ?? {})],
});
