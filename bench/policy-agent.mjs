// What the release policy adds on whole processes (issue 11's budget: < 1 ms p99 on a cached
// token for an approved caller). Two agents on one emulator, side by side in one run:
//   open  — `--policy open` (ssh-agent's behaviour; every decision logged),
//   rule  — the default policy with a sealed rule that allows `node` (the approved caller).
// Measured: (1) whole `azkeep account get-access-token` processes, interleaved between the two
// agents (each a new caller: /proc identification, rule match, log); (2) the answer latency at
// RATE requests/s from CLIENTS connections to each agent in turn, twice, alternating.
// `npm run build && node bench/policy-agent.mjs [--runs 21] [--seconds 3]`
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The policy writer is not part of the library's API: run under tsx to import it from src/.
const lib0 = await import("./lib.mjs");
lib0.underTsx(import.meta.url);

const {
  BIN,
  REPO,
  agentLatency,
  azkeepStoreEnv,
  baseEnv,
  machineLine,
  measure,
  median,
  must,
  option,
  percentile: pct,
  run,
  signInAlice,
  stopAgent,
  cleanupOnAbort,
} = lib0;
const { DEFAULT_DEFAULTS, deriveReleaseKeys, savePolicy } = await import("../src/agent/policy.ts");

const RUNS = Number(option("--runs", "21"));
const RATE = Number(option("--rate", "1000"));
const CLIENTS = Number(option("--clients", "20"));
const SECONDS = Number(option("--seconds", "3"));

const lib = await import(join(REPO, "dist", "lib", "index.js"));
const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
const root = mkdtempSync(join(tmpdir(), "azkeep-bench-policy-agent-"));
const emu = await startEmulator({ dataDir: join(root, "emulator") });
const agents = {};
const cleanup = cleanupOnAbort(async () => {
  for (const a of Object.values(agents)) await stopAgent(a.env, a.status);
  await emu.close();
  rmSync(root, { recursive: true, force: true });
});
try {
  for (const name of ["open", "rule"]) {
    const home = join(root, name);
    const env = { ...baseEnv(home, "UTC"), ...azkeepStoreEnv(home) };
    await signInAlice({ ...env, ...emu.env });
    must(
      await run(process.execPath, [BIN, "account", "get-access-token"], { ...env, ...emu.env }),
      "get-access-token",
    );
    const policy = name === "open" ? ["--policy", "open"] : [];
    agents[name] = { env };
    must(await run(process.execPath, [BIN, "agent", "start", ...policy], env), "agent start");
    const paths = lib.resolvePaths(env);
    const socketPath = lib.agentSocketPath(paths, env);
    if (name === "rule") {
      // The vault made its release secret at unlock; the first policy the agent sees is taken
      // and its MAC sealed (docs/policy.md). The rule allows this benchmark and the CLI (node).
      const deps = await lib.openTokenDeps(lib.createNodeContext({ env, onlyShowErrors: true }));
      const secret = (await deps.store.readSecrets()).release?.root;
      if (!secret) throw new Error("the agent made no release secret");
      const keys = deriveReleaseKeys(Buffer.from(secret, "base64"));
      await savePolicy(paths.configDir, keys.policy, {
        version: 1,
        defaults: { ...DEFAULT_DEFAULTS },
        rules: [{ name: "bench-node", caller: { exe: process.execPath }, action: "allow" }],
      });
    }
    // Agent-only from here: every measured client is answered by the agent.
    must(await run(process.execPath, [BIN, "agent", "start", "--agent-only", ...policy], env), "agent-only");
    const c = await lib.connectAgent({ socketPath, configDir: paths.configDir });
    agents[name] = { env, paths, socketPath, status: await c.status() };
    c.close();
    const probe = await run(process.execPath, [BIN, "account", "get-access-token", "-o", "none"], env);
    if (probe.code !== 0) throw new Error(`${name}: ${probe.stderr}`);
  }

  const cmds = Object.entries(agents).map(([name, a]) => ({
    key: name,
    argv: [process.execPath, BIN, "account", "get-access-token", "--only-show-errors"],
    env: a.env,
  }));
  await measure(2, cmds);
  const raw = await measure(RUNS, cmds);
  console.log(`release policy on whole processes: ${RUNS} interleaved runs (${new Date().toISOString()})`);
  console.log(machineLine());
  console.log("");
  console.log("| agent | get-access-token median ms | p90 ms |");
  console.log("|---|---:|---:|");
  for (const name of ["open", "rule"])
    console.log(`| ${name} | ${median(raw[name].wall).toFixed(1)} | ${pct(raw[name].wall, 90).toFixed(1)} |`);
  console.log(`rule − open, median: ${(median(raw.rule.wall) - median(raw.open.wall)).toFixed(2)} ms`);

  const lat = { open: [], rule: [] };
  for (let round = 0; round < 2; round++)
    for (const name of round === 0 ? ["open", "rule"] : ["rule", "open"]) {
      const a = agents[name];
      const r = await agentLatency(lib, {
        socketPath: a.socketPath,
        configDir: a.paths.configDir,
        clients: CLIENTS,
        rate: RATE,
        seconds: SECONDS,
      });
      if (r.errors) throw new Error(`${name}: ${r.errors} requests failed`);
      lat[name].push(...r.lat);
    }
  console.log("");
  console.log(`answer latency at ${RATE}/s from ${CLIENTS} connections, ${2 * SECONDS} s per agent (ms):`);
  console.log("| agent | p50 | p99 |");
  console.log("|---|---:|---:|");
  for (const name of ["open", "rule"])
    console.log(`| ${name} | ${pct(lat[name], 50).toFixed(3)} | ${pct(lat[name], 99).toFixed(3)} |`);
  const add = pct(lat.rule, 99) - pct(lat.open, 99);
  console.log(`the policy adds p99: ${add.toFixed(3)} ms (budget < 1 ms: ${add < 1 ? "met" : "MISSED"})`);
} finally {
  await cleanup();
}
