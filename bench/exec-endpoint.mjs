// `azkeep exec`'s credential endpoint under load, side by side with the emulator's own
// managed-identity endpoint (the same App Service 2019-08-01 requests), and the start-up cost
// exec adds to a child (`azkeep exec -- true` vs `true`).
//
// Load: one load-generator process with 20 clients (each its own keep-alive connection), open
// loop at --rate requests/s (default 500) for --seconds (default 10) after a 1 s warm-up, all
// for a cached ARM token. Inside exec the load generator is the run's child (the endpoint checks
// that every connection comes from a descendant; it decides once per connection). A second,
// lighter run (50 req/s) opens a new connection per request, so each pays the /proc peer lookup.
//
//   node bench/exec-endpoint.mjs [--rate 500] [--seconds 10] [--runs 11] [--json FILE]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BIN,
  REPO,
  azkeepStoreEnv,
  baseEnv,
  commandPath,
  measure,
  median,
  must,
  option,
  run,
  signInAlice,
} from "./lib.mjs";

const RATE = Number(option("--rate", "500"));
const SECONDS = Number(option("--seconds", "10"));
const RUNS = Number(option("--runs", "11"));
const JSON_OUT = option("--json", undefined);

// The load generator: prints {n, errors, p50, p90, p99, max} (ms) for IDENTITY_ENDPOINT.
const LOADGEN = String.raw`
const http = require("node:http");
const [rate, seconds, clients, keepAlive] = process.argv.slice(2).map(Number);
const url = new URL(process.env.IDENTITY_ENDPOINT + "?api-version=2019-08-01&resource=https://management.azure.com");
const headers = { "X-IDENTITY-HEADER": process.env.IDENTITY_HEADER };
const agents = Array.from({ length: clients }, () => keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false);
const lat = [];
// CPU time of the server: the parent process (exec; for the emulator, the bench that hosts it).
const cpuMs = () => {
  const f = require("node:fs").readFileSync("/proc/" + process.ppid + "/stat", "latin1");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) * 10; // utime + stime, in 10 ms ticks
};
let cpu0;
let errors = 0, done = 0, sent = 0;
function one(i, record) {
  const t0 = process.hrtime.bigint();
  const req = http.request(url, { headers, agent: agents[i % clients] }, (res) => {
    let body = "";
    res.on("data", (d) => (body += d));
    res.on("end", () => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.statusCode !== 200 || !body.includes("access_token")) errors++;
      if (record) lat.push(ms);
      done++;
    });
  });
  req.on("error", () => { errors++; done++; });
  req.end();
}
const warm = Math.max(1, Math.round(rate));
const total = Math.round(rate * seconds);
let start;
const interval = 1000 / rate;
function tick() {
  const now = performance.now();
  while (sent < warm + total && start + sent * interval <= now) { if (sent === warm) cpu0 = cpuMs(); one(sent, sent >= warm); sent++; }
  if (sent < warm + total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
  else (function wait() { if (done < sent) setTimeout(wait, 5); else report(); })();
}
function report() {
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  const elapsed = (performance.now() - start) / 1000;
  process.stdout.write(JSON.stringify({ n: lat.length, errors, achievedRate: Math.round(sent / elapsed), p50: q(0.5), p90: q(0.9), p99: q(0.99), max: lat[lat.length - 1], serverCpuMsPerRequest: (cpuMs() - cpu0) / lat.length }) + "\n");
  process.exit(0);
}
// One request first, alone: the audience's first token comes from the identity provider
// (the emulator, through its proxy); everything measured after it is the cached path.
http.get(url, { headers }, (res) => { res.resume(); res.on("end", () => { start = performance.now(); tick(); }); });
`;

async function main() {
  const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
  const root = mkdtempSync(join(tmpdir(), "azkeep-bench-exec-"));
  const emu = await startEmulator({ dataDir: join(root, "emulator") });
  try {
    const base = baseEnv(root);
    const storeEnv = azkeepStoreEnv(root);
    const signInEnv = { ...base, ...emu.env, ...storeEnv };
    await signInAlice(signInEnv);
    must(
      await run(process.execPath, [BIN, "account", "get-access-token"], signInEnv),
      "azkeep get-access-token",
    );
    const loadgen = join(root, "loadgen.cjs");
    writeFileSync(loadgen, LOADGEN);
    // The first request for the audience reaches the emulator (through its proxy); every
    // measured one is answered from exec's cache. The emulator's endpoint signs a token per request.
    const execEnv = signInEnv;
    const load = async (keepAlive, rate, seconds) => {
      const args = [loadgen, String(rate), String(seconds), "20", keepAlive ? "1" : "0"];
      const viaExec = must(
        await run(process.execPath, [BIN, "exec", "--", process.execPath, ...args], execEnv),
        "exec load",
      );
      const emulator = must(
        await run(process.execPath, args, { ...base, ...emu.managedIdentityEnv }),
        "emulator load",
      );
      return { exec: JSON.parse(viaExec.stdout), emulator: JSON.parse(emulator.stdout) };
    };
    const loadAvg = (await import("node:os"))
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" ");
    const keepAliveRun = await load(true, RATE, SECONDS);
    const newConnRun = await load(false, 50, 5);

    const truePath = commandPath("true");
    const startup = await measure(RUNS, [
      { key: "true", argv: [truePath], env: execEnv },
      { key: "node -e 0", argv: [process.execPath, "-e", "0"], env: execEnv },
      { key: "azkeep exec -- true", argv: [process.execPath, BIN, "exec", "--", truePath], env: execEnv },
    ]);
    const med = (k) => median(startup[k].wall);

    const f = (x) => (x === undefined ? "-" : x.toFixed(2));
    const row = (name, r) =>
      `| ${name} | ${r.n} | ${r.errors} | ${r.achievedRate} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.serverCpuMsPerRequest)} |`;
    const lines = [
      `Credential endpoint, App Service 2019-08-01 requests for a cached ARM token, 20 clients:`,
      "",
      "| endpoint | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU ms/request |",
      "|---|---|---|---|---|---|---|---|---|",
      row(`azkeep exec, keep-alive, ${RATE} req/s`, keepAliveRun.exec),
      row(`emulator's own, keep-alive, ${RATE} req/s`, keepAliveRun.emulator),
      row("azkeep exec, new connection per request, 50 req/s", newConnRun.exec),
      row("emulator's own, new connection per request, 50 req/s", newConnRun.emulator),
      "",
      `Start-up, wall time, median of ${RUNS} (ms): true ${f(med("true"))}, node -e 0 ${f(med("node -e 0"))}, ` +
        `azkeep exec -- true ${f(med("azkeep exec -- true"))} (overhead ${f(med("azkeep exec -- true") - med("true"))} ms); ` +
        `peak RSS of exec ${f(median(startup["azkeep exec -- true"].rss))} MiB.`,
      `(load average at the start: ${loadAvg})`,
      "",
      `Budget: p99 < 5 ms at ${RATE} req/s: ${keepAliveRun.exec.p99 < 5 && keepAliveRun.exec.errors === 0 ? "met" : "NOT met"}.`,
    ];
    console.log(lines.join("\n"));
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ keepAliveRun, newConnRun, startup }, null, 2));
  } finally {
    await emu.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
