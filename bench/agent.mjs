// The agent (docs/agent.md): a cached `azkeep account get-access-token` answered by the agent
// (as it is, and as scripts run it: `--query accessToken -o tsv`), side by side with bare
// `node -e 0` in one run (clean environment, and with the system CA bundle), for the key
// provider of AZKEEP_STORE_PROVIDER (default insecure-file; run it once per provider, see
// docs/benchmarks.md); then the agent's answer latency at 1,000 requests/s
// from 20 connections, from Node clients and from bench/loadgen.c (`--loadgen node|c|both`),
// with the front's CPU time per answer; a new process's first answer (loadgen.c --first: a
// caller the agent has never seen, as each CLI call is); and its idle RSS (front + vault). `--runs 0` skips the
// whole-process runs.
import { spawn } from "node:child_process";
import { readFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BIN,
  REPO,
  agentLatency,
  cFirst,
  cLatency,
  azkeepStoreEnv,
  baseEnv,
  machineLine,
  measure,
  median,
  must,
  option,
  percentile as pct,
  ratioInterval,
  run,
  cleanupAgentBench,
  signInAlice,
} from "./lib.mjs";

const RUNS = Number(option("--runs", "21"));
const RATE = Number(option("--rate", "1000"));
const CLIENTS = Number(option("--clients", "20"));
const SECONDS = Number(option("--seconds", "5"));
/** `node`, `c` or `both`: which load generator measures the answer latency. */
const LOADGEN = option("--loadgen", "both");
/** A file for loadgen.c's latencies and send times (ms), one answer a line, to see when the slow ones came. */
const DUMP = option("--dump", "");
/** New processes for "a new process's first answer" (bench/loadgen.c --first), and their spacing. */
const FIRST = Number(option("--first", "200"));
const FIRST_INTERVAL_MS = 20;
const PASSPHRASE = "bench-passphrase-for-the-agent";

/** Minor page faults of `pid` so far. */
function faults(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(f[7]);
}

/** CPU time (user + system) of `pid` so far, ms. */
function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks of 10 ms (USER_HZ 100)
}

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main() {
  const lib = await import(join(REPO, "dist", "lib", "index.js"));
  const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
  const root = mkdtempSync(join(tmpdir(), "azkeep-bench-agent-"));
  const emu = await startEmulator({ dataDir: join(root, "emulator") });
  const base = baseEnv(root, process.env.TZ ?? "UTC");
  const storeEnv = azkeepStoreEnv(root);
  const provider = storeEnv.AZKEEP_STORE_PROVIDER;
  const env = { ...base, ...storeEnv };
  let status;
  const cleanup = cleanupAgentBench({ env, emu, root, status: () => status });
  try {
    const loginEnv = {
      ...env,
      ...emu.env,
      ...(provider === "passphrase" ? { AZKEEP_PASSPHRASE: PASSPHRASE } : {}),
    };
    await signInAlice(loginEnv);
    must(await run(process.execPath, [BIN, "account", "get-access-token"], loginEnv), "get-access-token");
    must(await run(process.execPath, [BIN, "agent", "start", "--policy", "open"], env), "agent start");
    const paths = lib.resolvePaths(env);
    const socketPath = lib.agentSocketPath(paths, env);
    // After a passphrase unlock the vault answers and ends that connection: status on a new one.
    const conn = await lib.connectAgent({ socketPath, configDir: paths.configDir });
    status = await conn.unlock(async () => PASSPHRASE);
    conn.close();
    const again = await lib.connectAgent({ socketPath, configDir: paths.configDir });
    status = await again.status();
    again.close();
    if (status.locked) throw new Error("the agent did not unlock");
    // Every measured client must go through the agent: agent-only mode proves it (a client
    // that tried to open the store itself would fail and end the run).
    must(
      await run(process.execPath, [BIN, "agent", "start", "--agent-only", "--policy", "open"], env),
      "agent-only",
    );

    if (RUNS > 0) await wallAndRss(env, provider);
    await latency(lib, socketPath, paths.configDir, root, status);
    await new Promise((r) => setTimeout(r, 2000));
    console.log(
      `idle RSS: front ${rssMiB(status.pid).toFixed(1)} MiB, vault ${rssMiB(status.vaultPid).toFixed(1)} MiB (locked agent: the front only)`,
    );
  } finally {
    await cleanup();
  }
}

/** Whole processes, side by side with `node -e 0`: clean, and with the system CA bundle. */
async function wallAndRss(env, provider) {
  const systemCa = "/etc/ssl/certs/ca-certificates.crt";
  const scenarios = [{ name: "clean", extra: {} }];
  if (existsSync(systemCa))
    scenarios.push({ name: "system CA bundle", extra: { NODE_EXTRA_CA_CERTS: systemCa } });
  const cmds = [];
  for (const sc of scenarios) {
    const e = { ...env, ...sc.extra };
    cmds.push(
      { key: `${sc.name}: node -e 0`, argv: [process.execPath, "-e", "0"], env: e },
      {
        key: `${sc.name}: azkeep account get-access-token (agent)`,
        argv: [process.execPath, BIN, "account", "get-access-token", "--only-show-errors"],
        env: e,
      },
      // What scripts run in loops: `TOKEN=$(azkeep account get-access-token --query accessToken -o tsv)`.
      {
        key: `${sc.name}: azkeep account get-access-token --query accessToken -o tsv (agent)`,
        argv: [process.execPath, BIN, "account", "get-access-token", "--query", "accessToken", "-o", "tsv"],
        env: e,
      },
    );
  }
  await measure(2, cmds);
  const raw = await measure(RUNS, cmds);
  console.log(
    `agent, cached get-access-token, provider ${provider}: medians of ${RUNS} interleaved runs (${new Date().toISOString()})`,
  );
  console.log(machineLine());
  console.log("");
  console.log(
    "| environment | command | wall ms | peak RSS MiB | wall / node (95 % interval) | RSS / node |",
  );
  console.log("|---|---|---:|---:|---:|---:|");
  for (const sc of scenarios) {
    const node = raw[`${sc.name}: node -e 0`];
    const nw = median(node.wall),
      nr = median(node.rss);
    console.log(`| ${sc.name} | node -e 0 | ${nw.toFixed(1)} | ${nr.toFixed(1)} | 1.00 | 1.00 |`);
    for (const [label, key] of [
      ["get-access-token via agent", "azkeep account get-access-token (agent)"],
      ["… --query accessToken -o tsv", "azkeep account get-access-token --query accessToken -o tsv (agent)"],
    ]) {
      const mine = raw[`${sc.name}: ${key}`];
      const w = median(mine.wall),
        r = median(mine.rss);
      // The wall ratio's precision: this machine's noise is of the size of the budget's margin.
      const ci = ratioInterval(mine.wall, node.wall);
      const span = `${ci.low.toFixed(2)}–${ci.high.toFixed(2)}`;
      console.log(
        `| ${sc.name} | ${label} | ${w.toFixed(1)} | ${r.toFixed(1)} | ${(w / nw).toFixed(2)} (${span}) | ${(r / nr).toFixed(2)} |`,
      );
      const met = w / nw <= 1.15;
      const sure = met ? ci.high <= 1.15 : ci.low > 1.15;
      console.log(
        `budget (${sc.name}, ${label}): wall ≤ 1.15 × node ${met ? "met" : "MISSED"}` +
          `${sure ? "" : ` (the 95 % interval ${span} reaches ${met ? "past" : "under"} 1.15)`}; ` +
          `RSS ≤ 1.2 × node ${r / nr <= 1.2 ? "met" : "MISSED"}`,
      );
    }
  }
}

/**
 * Latency at RATE requests/s from CLIENTS connections, from two load generators in turn: Node
 * clients (the library's `connectAgent`, each paced on its own timer) and bench/loadgen.c (one
 * epoll thread in C, when a C compiler is here), whose own cost is near nothing, so its figures
 * are the agent's answer latency as a client sees it. Then the agent's own answer time.
 */
async function latency(lib, socketPath, configDir, root, status) {
  const line = (who, lat, errors, elapsed) =>
    console.log(
      `answer latency (${who}), ${lat.length} token requests in ${elapsed.toFixed(1)} s (${(lat.length / elapsed).toFixed(0)}/s) from ${CLIENTS} connections: ` +
        `p50 ${pct(lat, 50).toFixed(3)} ms, p99 ${pct(lat, 99).toFixed(3)} ms, max ${Math.max(...lat).toFixed(2)} ms, errors ${errors} ` +
        `(budget p99 < 1 ms: ${pct(lat, 99) < 1 ? "met" : "MISSED"})`,
    );
  console.log("");
  if (RUNS === 0) console.log(machineLine());
  if (LOADGEN !== "c") {
    const t0 = performance.now();
    const { lat, errors } = await agentLatency(lib, {
      socketPath,
      configDir,
      clients: CLIENTS,
      rate: RATE,
      seconds: SECONDS,
    });
    line("Node clients", lat, errors, (performance.now() - t0) / 1000);
  }
  if (LOADGEN !== "node") {
    const cpu0 = cpuMs(status.pid);
    const flt0 = faults(status.pid);
    const c = await cLatency({
      socketPath,
      configDir,
      clients: CLIENTS,
      rate: RATE,
      seconds: SECONDS,
      dir: root,
    });
    if (c && DUMP) writeFileSync(DUMP, c.lat.map((l, i) => `${l} ${c.sentAt[i]}\n`).join(""));
    if (c) line("bench/loadgen.c", c.lat, c.errors, c.elapsed);
    if (c)
      console.log(
        `the front's CPU time: ${(((cpuMs(status.pid) - cpu0) / c.lat.length) * 1000).toFixed(1)} µs per answer (user + system, /proc), ${((faults(status.pid) - flt0) / c.lat.length).toFixed(2)} minor page faults per answer`,
      );
    else
      console.log(
        "bench/loadgen.c: no C compiler (cc) here; install gcc to measure without the Node clients' own cost",
      );
    // The machine's floor: the same load against a C server that answers at once.
    if (c) {
      const floorSock = join(root, "floor.sock");
      const server = spawn(join(root, "loadgen"), ["--serve", floorSock], { stdio: "ignore" });
      try {
        for (let i = 0; i < 100 && !existsSync(floorSock); i++) await new Promise((r) => setTimeout(r, 20));
        const f = await cLatency({
          socketPath: floorSock,
          configDir,
          clients: CLIENTS,
          rate: RATE,
          seconds: SECONDS,
          dir: root,
        });
        if (f)
          line(
            "the machine's floor: bench/loadgen.c against a C server answering at once",
            f.lat,
            f.errors,
            f.elapsed,
          );
        // A new process's first answer, what every CLI and shim call waits for: a caller the
        // agent has never seen (it reads who it is from /proc), on a connection of its own.
        const firstLine = (who, r) =>
          console.log(
            `a new process's first answer (${who}), ${r.lat.length} processes ${FIRST_INTERVAL_MS} ms apart: ` +
              `p10 ${pct(r.lat, 10).toFixed(3)} ms, p50 ${pct(r.lat, 50).toFixed(3)} ms, p90 ${pct(r.lat, 90).toFixed(3)} ms, errors ${r.errors}`,
          );
        const first = await cFirst({
          socketPath,
          configDir,
          count: FIRST,
          intervalMs: FIRST_INTERVAL_MS,
          dir: root,
        });
        const firstFloor = await cFirst({
          socketPath: floorSock,
          configDir,
          count: FIRST,
          intervalMs: FIRST_INTERVAL_MS,
          dir: root,
        });
        if (first) firstLine("bench/loadgen.c --first, the agent", first);
        if (firstFloor) firstLine("the machine's floor: the C server answering at once", firstFloor);
      } finally {
        server.kill("SIGKILL");
      }
    }
  }
  // The agent's own share: from the whole frame read to the answer written, in the front.
  const after = await lib.connectAgent({ socketPath, configDir });
  const own = (await after.status()).answerMs;
  after.close();
  if (own)
    console.log(
      `the agent's own answer time (agent status, last ${own.count} requests): p50 ${own.p50} ms, p99 ${own.p99} ms`,
    );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
