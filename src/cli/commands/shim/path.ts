/**
 * `azkeep shim path`: the absolute folder of the `az` shim (the package's `shim/` folder),
 * printed raw (not JSON-quoted) so that `PATH="$(azkeep shim path):$PATH"` works.
 */
import { accessSync, chmodSync, constants, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AzkeepError } from "../../../core/errors.js";
import type { CommandRun } from "../../command.js";

/** Walks up from this module (dist/chunks/… once bundled, src/… under tsx) to `shim/az`. */
export function shimDir(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "shim", "az")) && existsSync(join(dir, "package.json")))
      return join(dir, "shim");
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new AzkeepError("internal", "azkeep's `shim/az` file is missing from its installation.", {
    hint: "Reinstall azkeep (npm install -g azkeep).",
  });
}

export const run: CommandRun<Record<string, never>> = async (_opts, io) => {
  const dir = shimDir();
  const az = join(dir, "az");
  try {
    accessSync(az, constants.X_OK);
  } catch {
    // Some installers drop the executable bit of files that are not `bin` entries.
    chmodSync(az, 0o755);
  }
  io.stdout(`${dir}\n`);
};
