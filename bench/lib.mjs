// What the benchmarks share: timing whole processes with os.wait4, medians, command-line
// options, and the environments of azkeep and of the Azure CLI signed in to the emulator.
// Not a benchmark itself (bench/run.mjs skips it).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../", import.meta.url));
export const BIN = join(REPO, "bin", "azkeep.js");
export const SHIM_DIR = join(REPO, "shim");

// The emulator's default seed.
export const ALICE = { upn: "alice@contoso.onmicrosoft.com", password: "alice-Passw0rd!" };
export const SP = {
  clientId: "5e5e5e5e-0000-4000-8000-00000000c001",
  secret: "azkeep-ci-secret-value",
  tenant: "11111111-1111-1111-1111-111111111111",
};

/** `--name value` from this process's arguments, else `dflt`. */
export function option(name, dflt) {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
}

export function hasCommand(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** The absolute path of `cmd` on PATH (posix_spawnp searches the measuring process's PATH). */
export function commandPath(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).stdout.trim();
}

/** Runs a command (not timed); resolves its exit code and output. */
export function run(cmd, argv, env, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

export function must(r, what) {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}`);
  return r;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The measuring loop, in Python for os.wait4: per-process rusage (CPU, peak RSS) without a
 * wrapper process in between, and microsecond timers. Reads `{runs, cmds: [{key, argv, env}],
 * inheritEnv?}` on stdin; runs the commands round-robin `runs` times (so machine noise hits
 * all alike), each with stdio on /dev/null; prints `{key: {wall, cpu, rss}}` (ms, ms, MiB
 * lists). A command that fails ends it. `inheritEnv` names variables copied from the loop's
 * own environment (e.g. the D-Bus address of the session it runs in).
 */
export const MEASURE = String.raw`
import json, os, sys, time
spec = json.load(sys.stdin)
devnull = os.open(os.devnull, os.O_RDWR)
out = {c["key"]: {"wall": [], "cpu": [], "rss": []} for c in spec["cmds"]}
for c in spec["cmds"]:
    for name in spec.get("inheritEnv", []):
        if name in os.environ:
            c["env"][name] = os.environ[name]
for _ in range(spec["runs"]):
    for c in spec["cmds"]:
        t0 = time.perf_counter()
        pid = os.posix_spawnp(c["argv"][0], c["argv"], c["env"],
            file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status, ru = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("%s exited with %d" % (c["key"], os.waitstatus_to_exitcode(status)))
        o = out[c["key"]]
        o["wall"].append(wall * 1000); o["cpu"].append((ru.ru_utime + ru.ru_stime) * 1000); o["rss"].append(ru.ru_maxrss / 1024)
json.dump(out, sys.stdout)
`;

/**
 * Times `cmds` (`[{key, argv, env}]`, absolute `argv[0]`) round-robin `runs` times with
 * `MEASURE`; resolves `{key: {wall, cpu, rss}}`. Asynchronous: the benchmark's own event loop
 * (an emulator, an approver) keeps running meanwhile.
 */
export function measure(runs, cmds) {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", MEASURE], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`measuring failed: ${err}`));
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        reject(e);
      }
    });
    child.stdin.end(JSON.stringify({ runs, cmds: cmds.map(({ key, argv, env }) => ({ key, argv, env })) }));
  });
}

/** Variables every measured process gets: enough to run, nothing from the developer's setup. */
export function baseEnv(home, tz = "UTC") {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, LANG: "C.UTF-8", TZ: tz };
}

/** azkeep's store under `root`, with the `insecure-file` key provider unless AZKEEP_STORE_PROVIDER says otherwise. */
export function azkeepStoreEnv(root) {
  return {
    AZKEEP_CONFIG_DIR: join(root, "azkeep"),
    XDG_RUNTIME_DIR: join(root, "run"),
    AZKEEP_STORE_PROVIDER: process.env.AZKEEP_STORE_PROVIDER ?? "insecure-file",
    NO_COLOR: "1",
    // The keyring provider needs the session bus (run the bench under dbus-run-session).
    ...(process.env.AZKEEP_STORE_PROVIDER === "keyring" && process.env.DBUS_SESSION_BUS_ADDRESS
      ? { DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS }
      : {}),
  };
}

/**
 * A throwaway Azure CLI config folder, `root/az`, and the Azure CLI's environment for it: the
 * stock AzureCloud reached through the emulator's proxy, trusting only the emulator's CA.
 * `versionCheck.json` is fresh, so az skips its update check (network, time).
 */
export function azSetup(root, base, emu) {
  const dir = join(root, "az");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(dir, "versionCheck.json"),
    JSON.stringify({
      versions: {
        "azure-cli": { local: "2.45.0" },
        core: { local: "2.45.0" },
        telemetry: { local: "1.0.8" },
      },
      update_time: new Date().toISOString().replace("T", " ").replace("Z", "000"),
    }),
  );
  return {
    dir,
    env: {
      ...base,
      AZURE_CONFIG_DIR: dir,
      HTTPS_PROXY: emu.urls.proxy,
      HTTP_PROXY: emu.urls.proxy,
      REQUESTS_CA_BUNDLE: emu.caCertPath,
      AZURE_CORE_COLLECT_TELEMETRY: "false",
      AZURE_CORE_NO_COLOR: "true",
      AZURE_CORE_SURVEY_MESSAGE: "false",
    },
  };
}

/**
 * How precisely `median(num) / median(den)` is known: a 95 % interval from `resamples` bootstrap
 * draws of whole rounds (num[i] and den[i] ran in the same round of `measure`, so a draw keeps
 * them together and the machine's drift between rounds stays paired). Seeded, so a run's
 * interval is the same each time it is computed. Each Node 20.20 process spends a random
 * 1.5–5 ms choosing its hash seed (docs/benchmarks.md, "Counted in instructions"): with tens of
 * runs, that alone moves a median by a few percent.
 */
export function ratioInterval(num, den, resamples = 2000) {
  const n = Math.min(num.length, den.length);
  let seed = 0x9e3779b9;
  const rand = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  const ratios = [];
  for (let k = 0; k < resamples; k++) {
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rand() * n);
      a[i] = num[j];
      b[i] = den[j];
    }
    ratios.push(median(a) / median(b));
  }
  return { low: percentile(ratios, 2.5), high: percentile(ratios, 97.5) };
}

/** The `p`th percentile of `xs` (nearest rank). */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/**
 * Token requests to the agent at `rate`/s from `clients` connections (each paced on its own
 * timer) for `seconds`; resolves each answer's latency (ms) and the number of failures.
 */
export async function agentLatency(lib, { socketPath, configDir, clients, rate, seconds }) {
  const conns = await Promise.all(
    Array.from({ length: clients }, () => lib.connectAgent({ socketPath, configDir })),
  );
  for (const c of conns) await c.getToken({ resourceType: "arm" }); // warm
  const lat = [];
  let errors = 0;
  const perClientMs = (1000 * clients) / rate;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    conns.map(async (c, i) => {
      let next = performance.now() + (i * perClientMs) / clients;
      const pending = [];
      while (next < end) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const s = performance.now();
        pending.push(
          c.getToken({ resourceType: "arm" }).then(
            () => lat.push(performance.now() - s),
            () => errors++,
          ),
        );
        next += perClientMs;
      }
      await Promise.all(pending);
    }),
  );
  for (const c of conns) c.close();
  return { lat, errors };
}

/** `azkeep login` as ALICE (the emulator's user, password on stdin) with `env`; throws on failure. */
export async function signInAlice(env) {
  must(
    await run(process.execPath, [BIN, "login", "-u", ALICE.upn, "--password-stdin"], env, ALICE.password),
    "azkeep login",
  );
}

/**
 * `cleanup` (stop the agent, close the emulator, remove the folder) made to run once, and also
 * when the benchmark is cut short: Ctrl-C, SIGTERM, SIGHUP, or its output piped into a reader
 * that went away (`| head`), after which the process ends (130, 143, 129; 0 for the pipe).
 * Without it a benchmark cut short left its agent running. Returns the run-once `cleanup` for
 * the benchmark's own `finally`.
 */
export function cleanupOnAbort(cleanup) {
  let done;
  const once = () =>
    (done ??= Promise.resolve()
      .then(cleanup)
      .catch(() => {}));
  const abort = (code) => once().then(() => process.exit(code));
  process.once("SIGINT", () => abort(130));
  process.once("SIGTERM", () => abort(143));
  process.once("SIGHUP", () => abort(129));
  process.stdout.on("error", (e) => {
    if (e.code === "EPIPE") abort(0);
  });
  return once;
}

/**
 * `cleanupOnAbort` for a benchmark of one agent: stops the agent of `env` (`status()` read at
 * that time: the agent may not have started yet), closes the emulator, removes `root`.
 */
export function cleanupAgentBench({ env, emu, root, status }) {
  return cleanupOnAbort(async () => {
    await stopAgent(env, status());
    await emu.close();
    rmSync(root, { recursive: true, force: true });
  });
}

/** Stops the agent of `env`, and kills its two processes if `stop` did not: a benchmark leaves none. */
export async function stopAgent(env, status) {
  await run(process.execPath, [BIN, "agent", "stop"], env).catch(() => {});
  for (const pid of [status?.pid, status?.vaultPid])
    if (pid)
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
}

/**
 * The same load as `agentLatency`, from bench/loadgen.c (compiled into `dir` with `cc`): one
 * epoll thread in C, so the figures are the agent's, not a Node client's event loop and
 * collector. Resolves undefined when there is no C compiler.
 */
export async function cLatency({ socketPath, configDir, clients, rate, seconds, dir }) {
  const exe = loadgen(dir);
  if (!exe) return undefined;
  const t0 = performance.now();
  const r = await runLoadgen(
    exe,
    [socketPath, configDir, String(clients), String(rate), String(seconds)],
    seconds + 30,
  );
  const elapsed = (performance.now() - t0) / 1000;
  const lines = r.stdout
    .trim()
    .split("\n")
    .map((l) => l.split(" ").map(Number));
  const lat = lines.map(([us]) => us / 1000);
  const sentAt = lines.map(([, us]) => us / 1000);
  const errors = Number(/errors (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { lat, sentAt, errors, elapsed };
}

/**
 * bench/loadgen.c `--first`: `count` new processes, `intervalMs` apart, each connecting and
 * asking once, as every CLI and shim call does; their times from connect() to the answer (ms).
 * Resolves undefined when there is no C compiler.
 */
export async function cFirst({ socketPath, configDir, count, intervalMs, dir }) {
  const exe = loadgen(dir);
  if (!exe) return undefined;
  const seconds = (count * (intervalMs + 50)) / 1000;
  const r = await runLoadgen(
    exe,
    ["--first", socketPath, configDir, String(count), String(intervalMs)],
    seconds + 30,
  );
  const lat = r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => Number(l) / 1000);
  const errors = Number(/errors (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { lat, errors };
}

/** bench/loadgen.c compiled into `dir` with `cc` (once); undefined when there is no C compiler. */
function loadgen(dir) {
  const exe = join(dir, "loadgen");
  if (existsSync(exe)) return exe;
  const cc = spawnSync("cc", ["-O2", "-o", exe, join(REPO, "bench", "loadgen.c")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  if (cc.error?.code === "ENOENT") return undefined;
  if (cc.status !== 0) throw new Error(`cc bench/loadgen.c failed: ${cc.stderr}`);
  return exe;
}

async function runLoadgen(exe, args, timeoutSeconds) {
  // Not spawnSync: this process may host the emulator the agent refreshes from.
  const r = await new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutSeconds * 1000 });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  if (r.status !== 0) throw new Error(`bench/loadgen.c failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r;
}

/**
 * Runs the calling benchmark again under tsx (for modules it imports from src/ that are not in
 * the library's API); returns only in the re-run process.
 */
export function underTsx(url) {
  if (process.env.AZKEEP_BENCH_TSX) return;
  const r = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(url), ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, AZKEEP_BENCH_TSX: "1" },
  });
  process.exit(r.status ?? 1);
}

/** One line naming the machine a benchmark ran on: Node, CPUs, load average. */
export function machineLine() {
  const l = os.loadavg().map((x) => x.toFixed(2));
  return `node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, load average ${l.join(" ")}`;
}
