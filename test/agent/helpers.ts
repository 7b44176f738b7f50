/**
 * Agent tests' shared pieces: starting the built agent for a signed-in HOME, reading its
 * status, and killing whatever agent processes a test leaves (by pid, front and vault).
 */
import assert from "node:assert/strict";
import type { AgentStatus } from "../../src/agent/protocol.js";
import type { SignedIn } from "../tokens/signed-in.js";

export type Status = AgentStatus & { running?: boolean; started?: boolean };

export async function agentStatus(
  s: Pick<SignedIn, "cli">,
  env: Record<string, string> = {},
): Promise<Status> {
  const r = await s.cli(["agent", "status"], { env });
  return JSON.parse(r.stdout || "{}") as Status;
}

export async function startAgent(
  s: Pick<SignedIn, "cli">,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Status> {
  // These tests are about the agent, not the release policy: ssh-agent's behaviour unless a
  // test names a policy (test/agent/release-policy.test.ts does).
  const policy = args.includes("--policy") ? [] : ["--policy", "open"];
  const r = await s.cli(["agent", "start", ...policy, ...args], { env });
  assert.equal(r.code, 0, `agent start: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

/** Kills the agent's processes (front and vault) by pid; ignores the gone. */
export function killAgent(...pids: (number | undefined)[]): void {
  for (const pid of pids) {
    if (!pid) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

/**
 * A suite's clean-up: kills the agent it started (`st`) and whichever agent serves `s` now (a
 * restart or unlock makes new pids), plus `more` pids.
 */
export async function killAgentOf(
  s: Pick<SignedIn, "cli"> | undefined,
  st: Pick<Status, "pid" | "vaultPid"> | undefined,
  ...more: number[]
): Promise<void> {
  const now = s ? await agentStatus(s).catch(() => undefined) : undefined;
  killAgent(st?.pid, st?.vaultPid, now?.pid, now?.vaultPid, ...more);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}
