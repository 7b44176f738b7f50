/**
 * Compiles the writer fixture (test/store/fixtures/writer.ts) for the many child processes of
 * the concurrency, crash and isolation tests: only the fixture is compiled; the store it drives
 * is the built library, `dist/lib/index.js` — what ships — loaded at run time (a child starts
 * in ~60 ms instead of ~250 ms through tsx).
 *
 * `lib`: another copy of the built library (the isolation test copies dist/ where another user
 * can read it).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const DIST_LIB = join(ROOT, "dist", "lib", "index.js");

export async function bundleWriter(
  options: { lib?: string; outDir?: string } = {},
): Promise<{ path: string; [Symbol.dispose](): void }> {
  const lib = options.lib ?? DIST_LIB;
  if (!existsSync(lib))
    throw new Error(`${lib} is missing: run \`npm run build\` (node scripts/test.mjs does)`);
  let dir = options.outDir;
  if (!dir) {
    mkdirSync(join(ROOT, ".tmp"), { recursive: true });
    dir = mkdtempSync(join(ROOT, ".tmp", "store-writer-"));
  }
  const path = join(dir, "writer.mjs");
  await build({
    entryPoints: [join(ROOT, "test/store/fixtures/writer.ts")],
    outfile: path,
    bundle: false,
    format: "esm",
    platform: "node",
    target: "node20",
    define: { __AZKEEP_LIB__: JSON.stringify(pathToFileURL(lib).href) },
    logLevel: "warning",
  });
  const made = dir;
  return { path, [Symbol.dispose]: () => rmSync(made, { recursive: true, force: true }) };
}
