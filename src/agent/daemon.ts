/**
 * The agent's front process (`dist/agent/daemon.js`), started detached by `azkeep agent start`
 * (or auto-start, or a systemd user unit with `--foreground`). See `server.ts` for what it does.
 *
 * Start-up, so that two concurrent starts leave exactly one agent and a stale socket is
 * replaced: under `<socket>.lock` (the store's cross-process lock), ask whatever listens on the
 * socket for a hello; an answer means an agent runs (this process reports it and exits 0);
 * otherwise remove the stale file and listen. The socket is created 0600 (umask) in a 0700
 * folder, both checked after.
 *
 * Arguments: `--idle MS`, `--max MS`, `--policy NAME`, `--foreground`. Output: one JSON line
 * on the IPC channel to the starter (`{ready, pid}` or `{already, pid}` or `{error}`), then
 * nothing; log lines go to stderr (the starter sends them to /dev/null, systemd to its journal).
 */
import { chmodSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { configPath, type AzkeepConfig } from "../core/config.js";
import { createNodeContext, resolvePaths } from "../core/context.js";
import type { Env } from "../core/paths.js";
import { AzkeepError } from "../core/errors.js";
import { withLock } from "../core/store/lock.js";
import { VERSION } from "../cli/version.js";
import { connectAgent } from "./client.js";
import { netListener, type AgentListener } from "./conn.js";
import { hardeningUnavailableReason, makeNonDumpable, peerCredentials } from "./peer.js";
import { agentSocketPath } from "./protocol.js";
import { listenRaw } from "./raw-server.js";
import { loadGate } from "./release.js";
import { AgentServer } from "./server.js";
import { HELPER_NICE, lowerHelperThreads } from "./threads.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function report(m: Record<string, unknown>): void {
  if (process.send) {
    process.send(m);
    process.disconnect();
  } else if (typeof m.error === "string") process.stderr.write(`ERROR: ${m.error}\n`);
}

function log(line: string): void {
  process.stderr.write(`azkeep-agent[${process.pid}] ${line}\n`);
}

/** Whether `path` is a folder of ours that nobody else may enter. */
function ensurePrivateFolder(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const st = lstatSync(path);
  if (!st.isDirectory() || (typeof process.getuid === "function" && st.uid !== process.getuid())) {
    throw new AzkeepError("store_unavailable", `The agent's folder ${path} is not a folder of yours.`, {
      hint: "Remove it, or set AZKEEP_AGENT_SOCK to a socket in a private folder.",
    });
  }
  if ((st.mode & 0o077) !== 0) chmodSync(path, 0o700);
}

/**
 * Listens on `path`, created 0600 (umask): on libuv's pipe directly (`raw-server.ts`), or with
 * `node:net` where those bindings are not as known.
 */
async function listen(path: string, env: Env): Promise<AgentListener> {
  const old = process.umask(0o177);
  try {
    const raw = listenRaw(path, env);
    if (raw) return raw;
    const server = createServer({ pauseOnConnect: false });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return netListener(server);
  } finally {
    process.umask(old);
  }
}

async function main(): Promise<void> {
  const nonDumpable = makeNonDumpable();
  const env = process.env;
  const paths = resolvePaths(env);
  const socketPath = agentSocketPath(paths, env);
  const idleMs = Number(arg("--idle") ?? 0);
  const maxMs = Number(arg("--max") ?? 0);
  const gateName = arg("--policy") ?? "ask";
  const gate = await loadGate(gateName, {
    configDir: paths.configDir,
    env,
    promptTty: arg("--prompt-tty"),
    logThread: join(dirname(fileURLToPath(import.meta.url)), "log-thread.js"),
  });
  if (!gate) throw new AzkeepError("usage", `Unknown release policy '${gateName}'.`);
  ensurePrivateFolder(dirname(socketPath));

  const outcome = await withLock(
    `${socketPath}.lock`,
    async (): Promise<{ already: number } | { listener: AgentListener }> => {
      const existing = await connectAgent({ socketPath, connectTimeoutMs: 2_000 }).catch(() => undefined);
      if (existing) {
        try {
          const h = await existing.hello;
          return { already: h.pid };
        } catch {
          /* not an agent that answers: replace it */
        } finally {
          existing.close();
        }
      }
      try {
        unlinkSync(socketPath);
      } catch {
        /* none */
      }
      const listener = await listen(socketPath, env);
      chmodSync(socketPath, 0o600);
      return { listener };
    },
    { clock: createNodeContext({ env }).clock, timeoutMs: 30_000 },
  );
  if ("already" in outcome) {
    report({ already: true, pid: outcome.already });
    process.exit(0);
  }

  // config.json, read as it is now (small; the vault's store reads it the same way).
  const config = (): AzkeepConfig => {
    try {
      return JSON.parse(readFileSync(configPath({ paths }), "utf8")) as AzkeepConfig;
    } catch {
      return { version: 1 };
    }
  };
  const provider = (): string | undefined => config().store?.key?.provider;
  const agentOnly = (): boolean => config().store?.mode === "agent-only";
  const vaultEnv: Record<string, string | undefined> = { ...env, AZKEEP_AGENT_VAULT: "1" };
  // The vault gets its passphrase from `unlock` only, never from the environment.
  delete vaultEnv.AZKEEP_PASSPHRASE;
  delete vaultEnv.AZKEEP_NEW_PASSPHRASE;
  delete vaultEnv.AZKEEP_PASSPHRASE_FILE;
  const peerProbe = hardeningUnavailableReason();
  const here = dirname(fileURLToPath(import.meta.url));
  let stopping = false;
  const agent = new AgentServer({
    server: outcome.listener,
    socketPath,
    configDir: paths.configDir,
    vaultEntry: join(here, "vault.js"),
    vaultEnv,
    gate,
    idleMs: Number.isFinite(idleMs) && idleMs > 0 ? idleMs : 0,
    maxMs: Number.isFinite(maxMs) && maxMs > 0 ? maxMs : 0,
    provider,
    agentOnly,
    peer: (conn) => peerCredentials(conn.fd),
    peerCheck: peerProbe ? `socket mode only (${peerProbe})` : "SO_PEERCRED",
    nonDumpable,
    azkeep: VERSION,
    unlockAtStart: provider() !== "passphrase",
    log,
    onUnlocked: () => {
      const n = lowerHelperThreads();
      if (n) log(`${n} helper threads lowered to nice ${HELPER_NICE}`);
    },
    onStop: () => {
      stopping = true;
      log("stopped");
      // The release log's last records are written first (they are written every 100 ms).
      const exit = () => process.exit(0);
      void Promise.all([gate.flushLog?.().catch(() => {}), new Promise((r) => setTimeout(r, 50))]).then(exit);
      setTimeout(exit, 2_000).unref();
    },
  });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (!stopping) agent.stop();
    });
  }
  lowerHelperThreads();
  log(`listening on ${socketPath}`);
  report({ ready: true, pid: process.pid });
}

main().catch((e: unknown) => {
  report({ error: e instanceof Error ? e.message : String(e) });
  process.exit(1);
});
