// The az shim answered by the agent (docs/agent.md, "The `az` shim has the same lane"): a cached
// `shim/az account get-access-token --resource https://management.core.windows.net/ -o json` —
// what Terraform, Pulumi and the SDKs run for every token — with an agent running, side by side
// with bare `node -e 0`, timed by hyperfine in a clean environment (`env -i`: PATH, HOME, the
// store's folders, no NODE_EXTRA_CA_CERTS). `--before <dir>` adds the shim of another built
// azkeep checkout (e.g. the commit before the shim had an agent lane) on the same agent.
//
//   npm run build && node bench/shim-agent.mjs [--rounds 10] [--runs 5] [--warmup 1] [--before /tmp/azkeep-before] [--cli]
//
// hyperfine runs each command's runs back to back; on a shared VM a noisy minute would land on one
// command only. So it runs in rounds (`--rounds` × `--runs` runs per command, 50 by default), the
// order of the commands rotated each round, and the medians are of all runs.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  BIN,
  REPO,
  SHIM_DIR,
  azkeepStoreEnv,
  hasCommand,
  machineLine,
  median,
  must,
  option,
  percentile,
  run,
  cleanupAgentBench,
  signInAlice,
} from "./lib.mjs";

const RUNS = Number(option("--runs", "5"));
const WARMUP = Number(option("--warmup", "1"));
const ROUNDS = Number(option("--rounds", "10"));
const BEFORE = option("--before", "");
// `--cli`: also `azkeep account get-access-token` (the CLI's agent lane), for reference.
const CLI = process.argv.includes("--cli");
const ARGS = [
  "account",
  "get-access-token",
  "--resource",
  "https://management.core.windows.net/",
  "-o",
  "json",
];

async function main() {
  if (!hasCommand("hyperfine")) {
    console.log("hyperfine is not installed: skipped (apt-get install hyperfine)");
    return;
  }
  if (BEFORE && !existsSync(join(BEFORE, "shim", "az")))
    throw new Error(`--before ${BEFORE}: no shim/az there`);
  const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
  const root = mkdtempSync(join(tmpdir(), "azkeep-bench-shim-agent-"));
  const emu = await startEmulator({ dataDir: join(root, "emulator") });
  // Exactly what the measured processes get: `node` for the shim's shebang, nothing else.
  const env = {
    PATH: [...new Set([dirname(process.execPath), "/usr/bin", "/bin"])].join(":"),
    HOME: root,
    LANG: "C.UTF-8",
    TZ: process.env.TZ ?? "UTC",
    ...azkeepStoreEnv(root),
  };
  if (env.AZKEEP_STORE_PROVIDER === "passphrase")
    throw new Error("use bench/agent.mjs for the passphrase provider");
  let status;
  const cleanup = cleanupAgentBench({ env, emu, root, status: () => status });
  try {
    const loginEnv = { ...env, ...emu.env };
    await signInAlice(loginEnv);
    must(await run(process.execPath, [BIN, ...ARGS], loginEnv), "get-access-token");
    // Agent-only mode: every measured shim must go through the agent (one that tried to open the
    // store itself would fail, and hyperfine with it).
    status = JSON.parse(
      must(
        await run(process.execPath, [BIN, "agent", "start", "--agent-only", "--policy", "open"], env),
        "agent start",
      ).stdout,
    );
    const shims = [{ name: "shim/az (agent lane)", az: join(SHIM_DIR, "az") }];
    if (BEFORE) shims.push({ name: `shim/az of ${BEFORE} (before)`, az: join(BEFORE, "shim", "az") });
    const cmds = [{ name: "node -e 0", argv: [process.execPath, "-e", "0"] }];
    for (const s of shims) {
      const check = spawnSync(s.az, ARGS, { env, encoding: "utf8" });
      if (check.status !== 0 || check.stderr !== "" || !JSON.parse(check.stdout).accessToken)
        throw new Error(`${s.name} did not answer: ${check.stderr}`);
      cmds.push({ name: s.name, argv: [s.az, ...ARGS] });
    }
    if (CLI) cmds.push({ name: "azkeep account get-access-token (its agent lane)", argv: [BIN, ...ARGS] });
    const quote = (a) => (/^[\w./:=-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const times = Object.fromEntries(cmds.map((c) => [c.name, []]));
    const rounds = [];
    let shown = false;
    for (let round = 0; round < ROUNDS; round++) {
      const order = cmds.map((_, i) => cmds[(i + round) % cmds.length]);
      const out = join(root, `hyperfine-${round}.json`);
      const argv = [
        "-i",
        ...envArgs,
        "hyperfine",
        "-N",
        "--style",
        "none",
        "--warmup",
        String(WARMUP),
        "--runs",
        String(RUNS),
        "--export-json",
        out,
        ...order.map((c) => c.argv.map(quote).join(" ")),
      ];
      if (!shown) {
        console.log(
          `command (round 1; later rounds rotate the order):\n  env ${argv.map(quote).join(" ")}\n`,
        );
        shown = true;
      }
      const r = spawnSync("env", argv, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`hyperfine failed: ${r.stderr}`);
      const results = JSON.parse(readFileSync(out, "utf8")).results;
      const medians = {};
      results.forEach((res, i) => {
        const name = order[i].name;
        times[name].push(...res.times.map((t) => t * 1000));
        medians[name] = res.median * 1000;
      });
      rounds.push(medians);
    }
    console.log(
      `az shim, cached get-access-token with an agent (agent-only, --policy open), provider ${env.AZKEEP_STORE_PROVIDER}: ` +
        `hyperfine -N, ${ROUNDS} round(s) × ${RUNS} runs (+${WARMUP} warm-up) each (${new Date().toISOString()})`,
    );
    console.log(machineLine());
    console.log("");
    const nodeAll = median(times["node -e 0"]);
    console.log(
      "| command | runs | median ms | p25–p75 ms | round medians ms (min–max) | over node ms | / node |",
    );
    console.log("|---|---:|---:|---|---|---:|---:|");
    for (const c of cmds) {
      const t = times[c.name];
      const all = median(t);
      const r = rounds.map((m) => m[c.name]);
      console.log(
        `| ${c.name} | ${t.length} | ${all.toFixed(1)} | ${percentile(t, 25).toFixed(1)}–${percentile(t, 75).toFixed(1)} | ` +
          `${Math.min(...r).toFixed(1)}–${Math.max(...r).toFixed(1)} | ${(all - nodeAll).toFixed(1)} | ${(all / nodeAll).toFixed(2)} |`,
      );
    }
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
