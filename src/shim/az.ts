/**
 * The `az` shim: an executable named `az` (in the folder `azkeep shim path` prints) that
 * answers, from azkeep's sealed store, the Azure CLI commands third-party tools run to get
 * tokens (reference §5.1): `az version`, `az account show`, `az account list` and
 * `az account get-access-token`, in every argv form those tools use. Everything else goes to a
 * real `az` further down PATH.
 *
 * Contract with callers: stdout holds JSON only; on success stderr is empty (callers treat any
 * stderr mentioning `az login` as "not signed in", even with exit 0); on failure stderr holds
 * `ERROR: …` and the exit code is 1 (2 for a bad argument), as az.
 *
 * Built as one file without code splitting (scripts/build.mjs): start-up is the shim's whole
 * cost, and every extra module costs a resolve, a read and a compile.
 */
import { dirname } from "node:path";
import { EXIT } from "../cli/exit-codes.js";
import { parseShimArgs, type ParsedShimArgs } from "./argv.js";
import { abortOnSignals, errorText, runParsed, writeAllSync } from "./run.js";

export { SHIM_AZ_VERSION } from "./run.js";

export interface ShimIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** The folder the shim runs from (skipped when looking for the real az). */
  selfDir: string;
  signal?: AbortSignal;
}

/** Runs the shim; resolves the exit code. */
export async function runShim(argv: readonly string[], io: ShimIO): Promise<number> {
  let parsed: ParsedShimArgs | undefined;
  try {
    parsed = parseShimArgs(argv, "az");
  } catch (e) {
    const { text, code } = errorText(e, "az", false);
    io.stderr(text);
    return code;
  }
  if (parsed) return runParsed(parsed, io, "az");
  const { findRealAz, runRealAz } = await import("./passthrough.js");
  const real = findRealAz(io.env.PATH, io.selfDir);
  if (!real) {
    const what =
      argv
        .filter((a) => !a.startsWith("-"))
        .slice(0, 3)
        .join(" ") || "(no command)";
    io.stderr(
      `ERROR: 'az ${what}' is not answered by azkeep's az shim, which only answers az version, az account show, az account list and az account get-access-token, and no Azure CLI was found further down PATH.\n` +
        "Install the Azure CLI (https://aka.ms/azure-cli) for other commands, or use azkeep's own (`azkeep --help`).\n",
    );
    return EXIT.error;
  }
  return runRealAz(real, argv);
}

/** Entry point used by `shim/az`; output is fully written when it resolves. */
export async function main(argv: readonly string[], scriptPath: string): Promise<number> {
  const signals = abortOnSignals();
  try {
    return await runShim(argv, {
      stdout: (s) => writeAllSync(1, s),
      stderr: (s) => writeAllSync(2, s),
      env: process.env,
      selfDir: dirname(scriptPath),
      get signal() {
        return signals.signal;
      },
    });
  } finally {
    signals.dispose();
  }
}
