/**
 * Tests that need a Debian package: skipped with a line saying what to install when it is
 * missing, except under CI=true, where a missing package is a failure (CI installs everything).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
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

/** Debian's python3 (the one az runs on) when there is one. */
export const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** Like `requireTool`, for a `PYTHON` that can `import yaml` (python3-yaml). */
export function requirePyYaml(t: TestContext): boolean {
  const install = "apt-get install -y python3-yaml";
  if (!requireTool(t, PYTHON, install)) return false;
  if (spawnSync(PYTHON, ["-c", "import yaml"], { stdio: "ignore" }).status === 0) return true;
  const msg = `${PYTHON} cannot import yaml: install it with \`${install}\``;
  if (process.env.CI === "true") throw new Error(`${msg} (CI must install it; see .ci/run)`);
  t.skip(msg);
  return false;
}
