// `npm test`: builds the bundle (end-to-end tests spawn it), then runs every test file with
// node's test runner through tsx. Arguments narrow the run: `npm test -- test/cli`.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const build = spawnSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

function collect(path, out) {
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const e of readdirSync(path).sort()) collect(join(path, e), out);
  } else if (/\.test\.ts$/.test(path)) out.push(path);
  return out;
}
const roots = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const flags = process.argv.slice(2).filter((a) => a.startsWith("-"));
const files = (roots.length ? roots : ["test"]).flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error("No test files found.");
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=600000", ...flags, ...files],
  { stdio: "inherit", env: { ...process.env, AZKEEP_TEST: "1" } },
);
process.exit(res.status ?? 1);
