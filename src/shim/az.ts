/**
 * The `az` shim: an executable named `az` (in the folder `azkeep shim path` prints) that
 * answers, from azkeep's sealed store, the Azure CLI commands third-party tools run to get
 * tokens: `az version` (and `az --version`), `az account show`, `az account list` and
 * `az account get-access-token`, in every argv form those tools use. `az account set`,
 * `az account clear`, `az logout` and `az cloud set` are azkeep's own commands; `az login` is
 * refused, naming `azkeep login`. Everything else goes to a real `az` further down PATH
 * (`route.ts` is the table).
 *
 * Contract with callers: stdout holds JSON only; on success stderr is empty (callers treat any
 * stderr mentioning `az login` as "not signed in", even with exit 0); on failure stderr holds
 * `ERROR: …` and the exit code is 1 (2 for a bad argument), as az.
 *
 * Built as one file without code splitting (scripts/build.mjs): start-up is the shim's whole
 * cost, and every extra module costs a resolve, a read and a compile.
 */
import { dirname, join } from "node:path";
import { EXIT } from "../cli/exit-codes.js";
import { VERSION } from "../cli/version.js";
import { route, type Route } from "./route.js";
import { abortOnSignals, errorText, readerGone, runParsed, SHIM_AZ_VERSION, writeAllSync } from "./run.js";

export { SHIM_AZ_VERSION } from "./run.js";

export interface ShimIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** The shim's own executable (`shim/az`, real path): skipped when looking for the real az. */
  selfPath: string;
  /** The folder relative PATH entries are resolved from. */
  cwd: string;
  signal?: AbortSignal;
  /** The shim's agent lane found the agent gone mid-request (see `withAgent`). */
  agentGone?: boolean;
}

const LOGIN_REFUSED =
  "ERROR: azkeep's az shim does not run `az login`: the Azure CLI would store its tokens in plain text (~/.azure), and the shim would not serve them.\n" +
  "Sign in with `azkeep login` instead (it takes az login's options: --tenant, --use-device-code, --service-principal -u …, --identity); az then answers from azkeep's sealed store.\n";

const LOGIN_REFUSED_IN_EXEC =
  "ERROR: Inside `azkeep exec`, az signs in only with the run's identity: `az login --identity`.\n" +
  "To use another account, end this run and start the tool with `azkeep exec --subscription … --tenant … -- …`.\n";

/** Runs the shim; resolves the exit code. */
export async function runShim(argv: readonly string[], io: ShimIO): Promise<number> {
  let r: Route;
  try {
    r = route(argv, { exec: Boolean(io.env.AZKEEP_EXEC_ENDPOINT) });
  } catch (e) {
    const { text, code } = errorText(e, "az", false);
    io.stderr(text);
    return code;
  }
  switch (r.kind) {
    case "answer":
      return runParsed(r.parsed, io, "az");
    case "refuse-login":
      io.stderr(io.env.AZKEEP_EXEC_ENDPOINT ? LOGIN_REFUSED_IN_EXEC : LOGIN_REFUSED);
      return EXIT.error;
    case "version-text":
      return versionText(io);
    case "azkeep": {
      const { runChild } = await import("./passthrough.js");
      return runChild(process.execPath, [azkeepBin(io.selfPath), ...r.args]);
    }
    case "real-az":
      return passThrough(argv, io);
  }
}

/** `bin/azkeep.js` of the same install as this shim. */
function azkeepBin(selfPath: string): string {
  return join(dirname(selfPath), "..", "bin", "azkeep.js");
}

function what(argv: readonly string[]): string {
  return (
    argv
      .filter((a) => !a.startsWith("-"))
      .slice(0, 3)
      .join(" ") || "(no command)"
  );
}

async function passThrough(argv: readonly string[], io: ShimIO): Promise<number> {
  const { findRealAz, nestedPassthrough, runRealAz } = await import("./passthrough.js");
  const outer = nestedPassthrough(io.env);
  if (outer) {
    io.stderr(
      `ERROR: 'az ${what(argv)}' reached azkeep's az shim again from inside ${outer}, which the shim had passed a command to: that az calls az back, and passing it on again would never end.\n` +
        `Make ${outer} run the Azure CLI by its full path (e.g. /usr/bin/az), or put the Azure CLI's own folder before it on PATH.\n`,
    );
    return EXIT.error;
  }
  const real = findRealAz(io.env.PATH, io.selfPath, io.cwd);
  if (!real) {
    io.stderr(
      `ERROR: 'az ${what(argv)}' is not answered by azkeep's az shim, which only answers az version, az account show, az account list and az account get-access-token, and no Azure CLI was found further down PATH.\n` +
        "Install the Azure CLI (https://aka.ms/azure-cli) for other commands, or use azkeep's own (`azkeep --help`).\n",
    );
    return EXIT.error;
  }
  return runRealAz(real, argv);
}

/** `az --version`: az's layout, the versions `az version` reports, and what this az is. */
async function versionText(io: ShimIO): Promise<number> {
  const v = io.env.AZKEEP_SHIM_AZ_VERSION || SHIM_AZ_VERSION;
  const { findRealAz } = await import("./passthrough.js");
  const real = findRealAz(io.env.PATH, io.selfPath, io.cwd);
  // az right-aligns the versions at column 40.
  const line = (name: string, version: string) => `${name.padEnd(40 - version.length)}${version}\n`;
  io.stdout(
    `${line("azure-cli", v)}\n${line("core", v)}${line("telemetry", "1.1.0")}\n` +
      `This az is azkeep's az shim (azkeep ${VERSION}): az version, az account show, list, get-access-token\n` +
      "and set are answered from azkeep's sealed store, with the version above so that tools accept them.\n" +
      (real
        ? `Other commands go to the Azure CLI at ${real}.\n`
        : "No Azure CLI was found further down PATH for other commands.\n"),
  );
  return EXIT.ok;
}

/**
 * Entry point used by `shim/az` (directly, or as the agent lane's fallback: `agentGone`, the lane
 * saw the agent go away mid-request); output is fully written when it resolves.
 */
export async function main(
  argv: readonly string[],
  scriptPath: string,
  options: { agentGone?: boolean } = {},
): Promise<number> {
  const signals = abortOnSignals();
  try {
    const code = await runShim(argv, {
      stdout: (s) => writeAllSync(1, s),
      stderr: (s) => writeAllSync(2, s),
      env: process.env,
      selfPath: scriptPath,
      cwd: process.cwd(),
      ...(options.agentGone ? { agentGone: true } : {}),
      get signal() {
        return signals.signal;
      },
    });
    return readerGone(1) ? 0 : code;
  } finally {
    signals.dispose();
  }
}
