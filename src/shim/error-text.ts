/**
 * The shim's error text: the frame's (`cli/error-text.ts`), plus, for `az`, the words its
 * callers look for. Its own module, light on purpose: the full shim (`run.ts`) and the shim's
 * agent lane (`agent-lane.ts`) print an agent's error with it, so the two cannot word it apart.
 */
import { errorText as commandErrorText } from "../cli/error-text.js";
import { EXIT } from "../cli/exit-codes.js";
import { ShimUsageError } from "./argv.js";
import type { Mode } from "./present.js";

/** The frame's error text (`cli/error-text.ts`), plus, for the shim, words callers look for. */
export function errorText(e: unknown, mode: Mode, debug: boolean): { text: string; code: number } {
  if (e instanceof ShimUsageError) return { text: `ERROR: ${e.message}\n`, code: EXIT.usage };
  if (mode === "azkeep") return commandErrorText(e, { debug });
  return commandErrorText(e, {
    debug,
    // Not signed in at all: say so in the words callers look for (JS and Python treat stderr
    // containing "az login" without "AADSTS" as "not signed in": try the next credential).
    // A store whose key is gone (a copied folder, keyutils after a reboot) is the same case.
    extra: (err) =>
      (err.code === "auth_required" || err.code === "store_damaged") && !/AADSTS/.test(err.message)
        ? "This az is azkeep's shim: sign in with `azkeep login` (not az login)."
        : undefined,
    bugReport: "This is a bug in azkeep's az shim; run the command again with --debug and report the output.",
  });
}
