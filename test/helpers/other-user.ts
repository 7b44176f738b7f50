/**
 * Running a process as another, unprivileged uid, bounded: for tests where another local user
 * is the attacker (`setpriv`), and for fork-prone tests (the shim), where a regression must not
 * take the machine down: `prlimit --nproc` caps the uid's processes and threads (root ignores
 * RLIMIT_NPROC, hence the other uid), and the whole process group is killed on timeout.
 *
 * The uid is not 65534 (nobody): RLIMIT_NPROC counts every process of the uid on the machine,
 * and other test runs on a shared machine may be running as nobody at the same time. No
 * account needs to exist for a uid; files it must read have to be world-readable.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { TestContext } from "node:test";
import { runProcess, type ProcessResult } from "./process.js";

/** The uid (and gid) the bounded processes run as. */
export const OTHER_UID = 64_127;

export const SETPRIV = "/usr/bin/setpriv";
export const PRLIMIT = "/usr/bin/prlimit";

/**
 * True when this process can switch to another uid (it is root). Otherwise skips the test with
 * the reason, or fails it under CI=true, where the suite runs as root.
 */
export function canSwitchUser(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  const msg = "needs root to run a process as another uid (setpriv)";
  if (process.env.CI === "true") throw new Error(`${msg}; CI runs the suite as root`);
  t.skip(msg);
  return false;
}

/** The argv prefix that runs a command as {@link OTHER_UID} with at most `nproc` tasks. */
export function asOtherUser(nproc: number, uid = OTHER_UID): string[] {
  return [
    PRLIMIT,
    `--nproc=${nproc}`,
    "--",
    SETPRIV,
    `--reuid=${uid}`,
    `--regid=${uid}`,
    "--clear-groups",
    "--",
  ];
}

/** Runs `cmd args` as the other uid, under the task limit, killed whole after `timeoutMs`. */
export function runAsOtherUser(
  cmd: string,
  args: string[],
  options: { nproc: number; timeoutMs: number; env: Record<string, string>; cwd?: string; input?: string },
): Promise<ProcessResult> {
  const [head, ...rest] = asOtherUser(options.nproc);
  return runProcess(head!, [...rest, cmd, ...args], options);
}

/** Starts a long-running process as the other uid (its own process group); kill with {@link killGroup}. */
export function spawnAsOtherUser(
  cmd: string,
  args: string[],
  options: { nproc: number; env: Record<string, string>; cwd?: string },
): ChildProcess {
  const [head, ...rest] = asOtherUser(options.nproc);
  return spawn(head!, [...rest, cmd, ...args], {
    env: options.env,
    cwd: options.cwd ?? "/",
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Kills a process group started detached, by its leader's pid. */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    /* gone */
  }
}
