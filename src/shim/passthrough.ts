/**
 * Commands the shim does not answer go to the real Azure CLI further down PATH.
 *
 * Threat stopped: the shim running itself without bound. With `PATH=<shim>:.:/usr/bin` and an
 * executable `az` in the working folder, the shim used to find `./az`, spawn it by the
 * relative name `az` (which PATH resolved to the shim again), and every level forwarded
 * SIGTERM and waited: a fork bomb that took the machine to the OOM killer. So:
 * - every PATH entry is resolved to an absolute folder (an empty entry is the working folder,
 *   as for execvp) and the real az is spawned by that absolute path, never by name;
 * - every `az` that is the shim is skipped: by real path (a symlink to the shim or to its
 *   folder), by file identity (a hard link), and by the marker written in `shim/az` (a copy of
 *   the shim or of its folder, another azkeep install);
 * - the az it passes to runs with {@link NESTED_ENV} set; a shim started under that marker that
 *   would pass a command through again refuses (an `az` wrapper that calls `az` back), with one
 *   message, instead of nesting.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, readFileSync, realpathSync, statSync, type Stats } from "node:fs";
import { delimiter, join, resolve } from "node:path";

/** Written into `shim/az`; a file containing it is an azkeep shim, never the real az. */
export const SHIM_MARKER = "azkeep-az-shim";

/** Set, to the az passed to, in the environment of the real az the shim runs. */
export const NESTED_ENV = "AZKEEP_SHIM_PASSED_TO";

function statOf(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function isExecutableFile(p: string, st: Stats | undefined): st is Stats {
  if (!st?.isFile()) return false;
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasMarker(p: string): boolean {
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

/**
 * The first `az` on PATH that is not an azkeep shim, as an absolute path, or undefined.
 * `selfPath` is the shim's own executable (`shim/az`), `cwd` the folder relative PATH entries
 * are taken from.
 */
export function findRealAz(
  path: string | undefined,
  selfPath: string,
  cwd: string = process.cwd(),
): string | undefined {
  const selfReal = real(selfPath);
  const selfDirReal = real(resolve(selfPath, ".."));
  const selfStat = statOf(selfReal);
  const seen = new Set<string>();
  for (const entry of (path ?? "").split(delimiter)) {
    const dir = resolve(cwd, entry === "" ? "." : entry);
    const candidate = join(dir, "az");
    const st = statOf(candidate);
    if (!isExecutableFile(candidate, st)) continue;
    const candidateReal = real(candidate);
    if (seen.has(candidateReal)) continue;
    seen.add(candidateReal);
    if (candidateReal === selfReal || real(dir) === selfDirReal) continue;
    if (selfStat && st.dev === selfStat.dev && st.ino === selfStat.ino) continue;
    if (hasMarker(candidateReal)) continue;
    return candidate;
  }
  return undefined;
}

/**
 * When this shim runs under an az it passed a command to (the marker is set), the az it would
 * pass to now; the caller refuses instead of nesting.
 */
export function nestedPassthrough(env: Record<string, string | undefined>): string | undefined {
  const v = env[NESTED_ENV];
  return v ? v : undefined;
}

/**
 * Runs `file` with `args` and the same standard streams; resolves its exit code. `extraEnv` is
 * added to this process's environment. SIGINT/SIGTERM are forwarded, once; a second one ends
 * the shim at once (the child has its own signal, and nothing here holds state).
 */
export function runChild(
  file: string,
  args: readonly string[],
  extraEnv: Record<string, string> = {},
): Promise<number> {
  return new Promise((done) => {
    const child = spawn(file, args, { stdio: "inherit", env: { ...process.env, ...extraEnv } });
    let forwarded = 0;
    const forward = (sig: NodeJS.Signals) => () => {
      if (++forwarded > 1) process.exit(sig === "SIGINT" ? 130 : 143);
      child.kill(sig);
    };
    const onInt = forward("SIGINT");
    const onTerm = forward("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    child.on("error", (e) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      process.stderr.write(`ERROR: Cannot run ${file}: ${e.message}\n`);
      done(1);
    });
    child.on("close", (code, signal) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      done(code ?? (signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 1));
    });
  });
}

/** Runs the real az (an absolute path from {@link findRealAz}) with the marker set. */
export function runRealAz(az: string, argv: readonly string[]): Promise<number> {
  return runChild(az, argv, { [NESTED_ENV]: az });
}
