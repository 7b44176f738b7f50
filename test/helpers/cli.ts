/** Runs the built CLI as a user would: a real process, a temporary HOME, captured output. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runProcess } from "./process.js";

export const BIN = fileURLToPath(new URL("../../bin/azkeep.js", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const r = await runProcess(process.execPath, [BIN, ...args], {
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    timeoutMs: options.timeoutMs ?? 60_000,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
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
