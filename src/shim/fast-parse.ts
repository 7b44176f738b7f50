/**
 * The command line of `azkeep account get-access-token` as both of its lanes read it (the agent
 * lane, `cli/agent-lane.ts`, and the full fast lane, `cli-fast.ts`): the shim's parser with
 * azkeep's extra flags. Anything unusual is left to the frame, whose messages are the reference.
 */
import { RESOURCE_TYPES } from "../core/clouds.js";
import { isOutputFormat } from "../cli/output/format.js";
import { parseShimArgs, type ParsedShimArgs } from "./argv.js";

/** The parsed command, or `undefined` when the frame must answer (help, a bad flag or value). */
export function fastParse(argv: readonly string[]): ParsedShimArgs | undefined {
  // Global flags may come first (`azkeep -o tsv account get-access-token`): leave those to the frame.
  if (argv[0] !== "account" || argv[1] !== "get-access-token") return undefined;
  let p: ParsedShimArgs | undefined;
  try {
    p = parseShimArgs(argv, "azkeep");
  } catch {
    return undefined;
  }
  // Values the frame validates with its own messages.
  if (p?.globals.output !== undefined && !isOutputFormat(p.globals.output)) return undefined;
  const rt = p?.options.resourceType;
  if (rt !== undefined && !(typeof rt === "string" && rt in RESOURCE_TYPES)) return undefined;
  return p;
}
