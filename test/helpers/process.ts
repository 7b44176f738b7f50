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

/**
 * The launcher `runConcurrently` starts: reads `{ count, cmd, args, env, timeoutMs }` on stdin,
 * starts `count` copies at once (each in its own process group, killed whole on timeout, stdin
 * closed at once), prints their results as one JSON array.
 */
const LAUNCHER = `
import { spawn } from "node:child_process";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const spec = JSON.parse(input);
const one = () =>
  new Promise((resolve) => {
    const child = spawn(spec.cmd, spec.args, { env: spec.env, cwd: spec.cwd, detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d.toString()));
    child.stderr.on("data", (d) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, spec.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: stderr + String(e) });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on("error", () => {});
    child.stdin.end();
  });
const results = await Promise.all(Array.from({ length: spec.count }, one));
process.stdout.write(JSON.stringify(results));
`;

/**
 * Runs `count` copies of one command at once, started by a launcher process rather than by
 * this one, and collects their results (as `runProcess`, stdin empty).
 *
 * Why not `Promise.all` of `runProcess` here: `spawn()` blocks the caller's event loop until
 * the child has exec'd, so starting 50 node processes blocks it for 50 such waits — measured at
 * 8.5–9.5 s with three test files at once on 2 cores. When this process also serves the
 * emulator (`signedIn()`), the identity provider answers nothing meanwhile: the agent's refresh
 * of an expiring token timed out (4 s per attempt, 6 s in all) and the aging token was served
 * as its fallback, by design — and the test saw no token request.
 */
export async function runConcurrently(
  count: number,
  cmd: string,
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    timeoutMs?: number;
    cwd?: string;
  } = {},
): Promise<ProcessResult[]> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.env ?? process.env)) if (v !== undefined) env[k] = v;
  const timeoutMs = options.timeoutMs ?? 180_000;
  const launcher = await runProcess(process.execPath, ["--input-type=module", "-e", LAUNCHER], {
    input: JSON.stringify({
      count,
      cmd,
      args,
      env,
      cwd: options.cwd ?? process.cwd(),
      timeoutMs,
    }),
    timeoutMs: timeoutMs + 30_000,
  });
  if (launcher.code !== 0)
    throw new Error(`the launcher failed (${launcher.code ?? launcher.signal}): ${launcher.stderr}`);
  return JSON.parse(launcher.stdout) as ProcessResult[];
}
