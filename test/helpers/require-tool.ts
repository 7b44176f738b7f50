/**
 * Tests that need a Debian package: skipped with a line saying what to install when it is
 * missing, except under CI=true, where a missing package is a failure (CI installs everything).
 */
import { spawnSync } from "node:child_process";
import type { TestContext } from "node:test";

export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** Returns true when the tool is present; otherwise skips (or fails under CI) and returns false. */
export function requireTool(t: TestContext, cmd: string, install: string): boolean {
  if (hasCommand(cmd)) return true;
  const msg = `'${cmd}' is missing: install it with \`${install}\``;
  if (process.env.CI === "true") throw new Error(`${msg} (CI must install it; see .ci/run)`);
  t.skip(msg);
  return false;
}
