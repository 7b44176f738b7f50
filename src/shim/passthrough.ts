/**
 * Commands the shim does not answer go to the real Azure CLI further down PATH. The shim's own
 * folder, and any other azkeep shim (a file with the marker below), are skipped, so two
 * installs cannot call each other forever.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, readFileSync, realpathSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Written into `shim/az`; a file containing it is an azkeep shim, never the real az. */
export const SHIM_MARKER = "azkeep-az-shim";

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function isShim(p: string): boolean {
  try {
    const head = readFileSync(p, { encoding: "latin1" }).slice(0, 512);
    return head.includes(SHIM_MARKER);
  } catch {
    return false;
  }
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** The first `az` on PATH that is not an azkeep shim, or undefined. */
export function findRealAz(path: string | undefined, selfDir: string): string | undefined {
  const self = real(selfDir);
  for (const dir of (path ?? "").split(delimiter)) {
    if (!dir || real(dir) === self) continue;
    const candidate = join(dir, "az");
    if (isExecutableFile(candidate) && !isShim(candidate)) return candidate;
  }
  return undefined;
}

/** Runs the real az with the same arguments and standard streams; resolves its exit code. */
export function runRealAz(az: string, argv: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(az, argv, { stdio: "inherit" });
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const onInt = forward("SIGINT");
    const onTerm = forward("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    child.on("error", (e) => {
      process.stderr.write(`ERROR: Cannot run the Azure CLI at ${az}: ${e.message}\n`);
      resolve(1);
    });
    child.on("close", (code, signal) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve(code ?? (signal === "SIGINT" ? 130 : 1));
    });
  });
}
