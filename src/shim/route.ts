/**
 * Where the `az` shim sends a command line. One table, read top to bottom:
 *
 * 1. `az login` is refused, naming `azkeep login`: the Azure CLI would write the plaintext token
 *    cache azkeep exists to remove, and the shim would not serve what it stored anyway.
 * 2. The commands that change which account or cloud az uses — `az account set`, `az account
 *    clear`, `az logout`, `az cloud set` — are azkeep's own commands of the same name and
 *    options (run as `azkeep …`), so that they change what the shim serves. Passed to the real
 *    az they would change only the Azure CLI's files, silently.
 * 3. `az --version` is answered with the versions `az version` reports (the same story).
 * 4. `az version`, `az account show|list|get-access-token` are answered from the store
 *    (`argv.ts`, `run.ts`).
 * 5. Everything else goes to the real az further down PATH (`passthrough.ts`).
 *
 * Inside `azkeep exec` (exec mode) the store is never opened: 1 and 2 go to the real az, whose
 * config folder is the run's own (`AZURE_CONFIG_DIR`), and `az login` is let through only as
 * `az login --identity` (the run's endpoint, through `MSI_ENDPOINT`); 4 is answered from the
 * run's endpoint (`run.ts`, `exec/shim-mode.ts`).
 */
import { parseShimArgs, type ParsedShimArgs } from "./argv.js";

export type Route =
  | { kind: "answer"; parsed: ParsedShimArgs }
  | { kind: "azkeep"; args: string[] }
  | { kind: "refuse-login" }
  | { kind: "version-text" }
  | { kind: "real-az" };

const GLOBAL_SWITCHES = new Set(["--debug", "--verbose", "--only-show-errors"]);
const GLOBAL_VALUES = new Set(["-o", "--output", "--query"]);

/**
 * The command words of `argv`, global flags anywhere before them skipped (`az --debug login`
 * is `login`): the words up to the first other flag.
 */
export function commandWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const flag = a.replace(/=.*$/s, "");
    if (GLOBAL_SWITCHES.has(flag)) continue;
    if (GLOBAL_VALUES.has(flag)) {
      if (flag === a) i++;
      continue;
    }
    if (a.startsWith("-")) break;
    words.push(a);
  }
  return words;
}

/** az commands that change the signed-in state: azkeep's command of the same words. */
const STATE_COMMANDS = ["account set", "account clear", "logout", "cloud set"];

/** Decides where `argv` goes; throws `ShimUsageError` for an answered command's bad flag. */
export function route(argv: readonly string[], options: { exec?: boolean } = {}): Route {
  const words = commandWords(argv);
  if (words[0] === "login") {
    if (options.exec && (argv.includes("--identity") || argv.includes("-i"))) return { kind: "real-az" };
    return { kind: "refuse-login" };
  }
  for (const cmd of STATE_COMMANDS) {
    if (options.exec) break;
    const n = cmd.split(" ").length;
    // The shim never warns (callers read any stderr as trouble); `--verbose` is az's, not
    // azkeep's; the rest of the line is azkeep's command as given.
    if (words.slice(0, n).join(" ") === cmd)
      return {
        kind: "azkeep",
        args: ["--only-show-errors", ...argv.filter((a) => a !== "--verbose" && a !== "--only-show-errors")],
      };
  }
  if (words.length === 0 && argv.includes("--version")) return { kind: "version-text" };
  const parsed = parseShimArgs(argv, "az");
  return parsed ? { kind: "answer", parsed } : { kind: "real-az" };
}
