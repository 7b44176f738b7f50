/**
 * The client side of running an agent: where its socket is, starting one in the background
 * (`azkeep agent start`, and auto-start), and reaching the running one. Used by the CLI, the
 * fast lane, the shim and the library; imports only the client and node built-ins (the child
 * process module only when an agent must be started).
 */
import { lstatSync } from "node:fs";
import { dirname } from "node:path";
import type { Context, Env, Paths } from "../core/context.js";
import { AzkeepError } from "../core/errors.js";
import { connectAgent, type AgentConnection } from "./client.js";
import { lstatLean } from "./raw-pipe.js";
import { agentSocketPath } from "./protocol.js";

export function socketPathOf(ctx: { paths: Paths; env: Env }): string {
  return agentSocketPath(ctx.paths, ctx.env);
}

/**
 * Connects to the agent of this config folder; `undefined` when none runs. Refuses a socket in
 * a folder other users may write to or that is not ours (someone else's listener would see
 * every request).
 */
export async function reachAgent(
  ctx: { paths: Paths; env: Env },
  options: { lean?: boolean } = {},
): Promise<AgentConnection | undefined> {
  const socketPath = socketPathOf(ctx);
  let st;
  try {
    st =
      (options.lean ? lstatLean(dirname(socketPath), ctx.env) : undefined) ?? lstatSync(dirname(socketPath));
  } catch {
    return undefined;
  }
  const uid = typeof process.getuid === "function" ? process.getuid() : -1;
  if (uid >= 0 && (st.uid !== uid || (st.mode & 0o022) !== 0)) {
    throw new AzkeepError(
      "store_unavailable",
      `The agent's folder ${dirname(socketPath)} is not private to you; azkeep does not talk to a socket there.`,
      { hint: `Run \`chmod 700 '${dirname(socketPath)}'\` if it is yours, or set AZKEEP_AGENT_SOCK.` },
    );
  }
  return connectAgent({
    socketPath,
    configDir: ctx.paths.configDir,
    ...(options.lean ? { lean: true } : {}),
  });
}

export interface StartOptions {
  idleMs?: number;
  maxMs?: number;
  policy?: string;
  /** How long to wait for the agent to listen (default 15 s). */
  timeoutMs?: number;
}

export interface Started {
  pid: number;
  /** An agent was running already (this start did nothing). */
  already: boolean;
  socket: string;
}

/** The agent's entry point beside this bundle: dist/agent/daemon.js. */
function daemonEntry(): string {
  return new URL("../agent/daemon.js", import.meta.url).pathname;
}

/**
 * Starts the agent in the background (detached, its own session, no terminal) and waits until
 * it listens, or reports the one already running. Two concurrent starts leave one agent.
 */
export async function startAgent(ctx: Context, options: StartOptions = {}): Promise<Started> {
  const socket = socketPathOf(ctx);
  const { spawn } = await import("node:child_process");
  const args = [daemonEntry()];
  if (options.idleMs) args.push("--idle", String(options.idleMs));
  if (options.maxMs) args.push("--max", String(options.maxMs));
  if (options.policy) args.push("--policy", options.policy);
  // The terminal this command runs in: where the agent asks the person (pinentry).
  const { readProcess } = await import("../core/procfs.js");
  const tty = readProcess(process.pid).tty;
  if (tty?.startsWith("/dev/")) args.push("--prompt-tty", tty);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined) env[k] = v;
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ["ignore", "ignore", "ignore", "ipc"],
    env,
    cwd: "/",
  });
  return new Promise<Started>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new AzkeepError("config", "The azkeep agent did not start in time.", {
          hint: "Run `azkeep agent start --foreground` to see why.",
        }),
      );
    }, options.timeoutMs ?? 15_000);
    const done = () => {
      clearTimeout(timer);
      child.unref();
      if (child.connected) child.disconnect();
    };
    child.once("message", (m: { ready?: boolean; already?: boolean; pid?: number; error?: string }) => {
      done();
      if (m.error)
        reject(
          new AzkeepError("config", `The azkeep agent could not start: ${m.error}`, {
            hint: "Run `azkeep agent start --foreground` to see why.",
          }),
        );
      else resolve({ pid: m.pid ?? 0, already: m.already === true, socket });
    });
    child.once("error", (e) => {
      done();
      reject(new AzkeepError("config", `The azkeep agent could not start: ${e.message}`));
    });
    child.once("exit", (code) => {
      done();
      reject(
        new AzkeepError("config", `The azkeep agent exited at start (code ${code}).`, {
          hint: "Run `azkeep agent start --foreground` to see why.",
        }),
      );
    });
  });
}

/** Parses `30s`, `15m`, `8h`, `1d` or plain seconds into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "s") as "s"];
  const ms = Math.round(n * unit);
  return ms > 0 ? ms : undefined;
}
