/**
 * The one table that maps library error codes to exit codes. Documented in
 * `docs/exit-codes.md`; keep both in step.
 */
import type { ErrorCode } from "../core/errors.js";

export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  /** `azkeep doctor` found credentials at risk. */
  atRisk: 3,
  /** Interrupted by Ctrl-C (128 + SIGINT). */
  interrupted: 130,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case "usage":
      return EXIT.usage;
    case "cancelled":
      return EXIT.error;
    default:
      return EXIT.error;
  }
}
