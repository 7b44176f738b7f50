/**
 * Runs a real process and collects its output: its own process group (killed whole on
 * timeout, grandchildren too), exactly the environment given, stdin fed then closed.
 */
import { spawn } from "node:child_process";

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runProcess(
  cmd: string,
  args: string[],
  options: {
    /** Exactly these variables (undefined ones dropped); default: this process's. */
    env?: Record<string, string | undefined>;
    timeoutMs?: number;
    input?: string;
    cwd?: string;
  } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.env ?? process.env)) if (v !== undefined) env[k] = v;
    const child = spawn(cmd, args, { env, cwd: options.cwd ?? process.cwd(), detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, options.timeoutMs ?? 180_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on("error", () => {}); // a child that never reads stdin (EPIPE) is not a failure
    child.stdin.end(options.input ?? "");
  });
}
