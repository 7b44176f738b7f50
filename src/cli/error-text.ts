/**
 * The one text of a failed command: `ERROR: <message>`, the next step (the error's hint) and,
 * with --debug, the cause — all redacted — with its exit code from `exit-codes.ts`. Shared by
 * the frame (`main.ts`) and the hot paths (`shim/run.ts`), so it imports neither commander nor
 * the frame.
 */
import { AzkeepError } from "../core/errors.js";
import { redact } from "../core/redact.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";

export interface ErrorTextOptions {
  debug: boolean;
  /** A line after the hint, for callers that look for certain words (the `az` shim). */
  extra?: (e: AzkeepError) => string | undefined;
  /** What an unexpected error (a bug) tells the person to do. */
  bugReport?: string;
}

const BUG_REPORT =
  "This is a bug in azkeep. Run the command again with --debug and report the output (it is redacted).";

export function errorText(e: unknown, options: ErrorTextOptions): { text: string; code: number } {
  if (e instanceof Error && e.name === "AbortError") {
    return { text: "ERROR: Interrupted.\n", code: EXIT.interrupted };
  }
  if (e instanceof AzkeepError) {
    let text = `ERROR: ${redact(e.message)}\n`;
    if (e.hint) text += `${redact(e.hint)}\n`;
    const extra = options.extra?.(e);
    if (extra) text += `${extra}\n`;
    if (options.debug && e.cause instanceof Error)
      text += `DEBUG: caused by: ${redact(e.cause.stack ?? e.cause.message)}\n`;
    // An error may carry its own exit code (`exec`: 127 for a command that is not found).
    const own = e.details?.exitCode;
    return { text, code: typeof own === "number" ? own : exitCodeFor(e.code) };
  }
  const message = e instanceof Error ? e.message : String(e);
  let text = `ERROR: ${redact(message)}\n${options.bugReport ?? BUG_REPORT}\n`;
  if (options.debug && e instanceof Error && e.stack) text += `DEBUG: ${redact(e.stack)}\n`;
  return { text, code: EXIT.error };
}
