/**
 * What `azkeep doctor` reports: one finding per file that holds a usable credential (or is
 * exposed in a way that matters), and how azkeep's own store is protected. Findings describe
 * what a file holds — kinds and counts, account names — and never contain the secret itself.
 */
import type { Context } from "../context.js";

/**
 * - `high`: a long-lived credential anyone who copies the file can use elsewhere (refresh
 *   tokens, client secrets, private keys, static access keys), or a file whose content others
 *   can change and a tool executes.
 * - `medium`: short-lived credentials (access tokens, temporary keys) or a weaker protection
 *   of azkeep's own store.
 * - `low`: information exposure without a credential (account names, tenant ids), or a file
 *   that could not be checked.
 */
export type Risk = "high" | "medium" | "low";

export interface Finding {
  /** The tool that wrote the file: `Azure CLI`, `azd`, `AWS CLI`, `gcloud`, `kubectl`, `azkeep`. */
  tool: string;
  path: string;
  /** What the file holds or why it matters, never the secret itself. */
  holds: string;
  risk: Risk;
  /** Permission bits as octal (`0600`), or null when not known. */
  mode: string | null;
  /** Group or others may read it. */
  readableByOthers: boolean;
  /** The command(s) that fix it. */
  fix: string;
}

/** One check: looks where one tool keeps credentials, returns findings and the paths it looked at. */
export interface CheckResult {
  findings: Finding[];
  checked: string[];
}

export type Check = (ctx: Context) => Promise<CheckResult>;
