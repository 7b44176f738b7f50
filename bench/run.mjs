// `npm run bench`: runs every benchmark in bench/ (each a standalone script printing its own
// report), one after the other so they do not disturb each other's timings.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL("./", import.meta.url));
// `npm run bench -- [names…] [--flag value…]`: names pick benchmarks, flags go to each of them.
const only = [];
const passThrough = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a.startsWith("-")) {
    passThrough.push(a);
    if (args[i + 1] !== undefined && !args[i + 1].startsWith("-")) passThrough.push(args[++i]);
  } else only.push(a);
}
const benches = readdirSync(dir)
  .filter((f) => f.endsWith(".mjs") && f !== "run.mjs" && f !== "lib.mjs")
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
let failed = 0;
for (const f of benches) {
  console.log(`\n### ${f}\n`);
  const r = spawnSync(process.execPath, [fileURLToPath(new URL(f, import.meta.url)), ...passThrough], {
    stdio: "inherit",
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
