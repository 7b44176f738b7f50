/** Runs a real child process (a test environment such as dbus-run-session) and collects its output. */
import { spawn } from "node:child_process";

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runChild(
  cmd: string,
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    timeoutMs?: number;
    input?: string;
    cwd?: string;
  } = {},
): Promise<ChildResult> {
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

/** The command prefix that runs `argv` under a fresh D-Bus session with an unlocked gnome-keyring. */
export function underGnomeKeyring(argv: string[]): [string, string[]] {
  return [
    "dbus-run-session",
    [
      "--",
      "sh",
      "-c",
      'printf azkeep-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$0" "$@"',
      ...argv,
    ],
  ];
}

/** The command prefix that runs `argv` in a new anonymous kernel session keyring. */
export function underKeyctlSession(argv: string[]): [string, string[]] {
  return ["keyctl", ["session", "-", ...argv]];
}

export const TSX = [process.execPath, "--import", "tsx"];
