/** Runs the built CLI as a user would: a real process, a temporary HOME, captured output. */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../../bin/azkeep.js", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", ...options.env };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const child = spawn(process.execPath, [BIN, ...args], { env: env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** A temporary HOME with its own azkeep config folder, removed on dispose. */
export function tempHome(): { home: string; env: Record<string, string>; [Symbol.dispose](): void } {
  const home = mkdtempSync(join(tmpdir(), "azkeep-test-"));
  return {
    home,
    env: {
      HOME: home,
      AZKEEP_CONFIG_DIR: join(home, ".config", "azkeep"),
      XDG_RUNTIME_DIR: join(home, "run"),
    },
    [Symbol.dispose]() {
      rmSync(home, { recursive: true, force: true });
    },
  };
}
