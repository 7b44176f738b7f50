/**
 * What every hot path of `get-access-token` shares once the command line is parsed: the output
 * format it asked for, the agent request it makes, and how the answer is shown (`--query`, `-o`).
 * Used by the full fast lane and the shim (`run.ts`) and by the agent lane (`cli/agent-lane.ts`),
 * so the two lanes cannot print differently. Light on purpose: no store, no network, no crypto.
 */
import type { TokenQuery } from "../agent/protocol.js";
import {
  applyQuery,
  formatOutput,
  invalidOutputMessage,
  isOutputFormat,
  type OutputFormat,
  type TableTransformer,
} from "../cli/output/format.js";
import { ShimUsageError, type ParsedShimArgs } from "./argv.js";

/** `az`: the shim (quiet, az's words); `azkeep`: the CLI's fast path (the frame's behaviour). */
export type Mode = "az" | "azkeep";

export function str(v: string | string[] | boolean | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** `-o`, else `AZURE_CORE_OUTPUT` (the shim) / `AZKEEP_CORE_OUTPUT` (azkeep), else json. */
export function chooseOutput(
  p: ParsedShimArgs,
  env: Readonly<Record<string, string | undefined>>,
  mode: Mode,
): OutputFormat {
  const envOutput = mode === "az" ? env.AZURE_CORE_OUTPUT : env.AZKEEP_CORE_OUTPUT;
  if (p.globals.output !== undefined) {
    if (!isOutputFormat(p.globals.output)) throw new ShimUsageError(invalidOutputMessage(p.globals.output));
    return p.globals.output;
  }
  return envOutput && isOutputFormat(envOutput) ? envOutput : "json";
}

/** The agent request of a parsed `account get-access-token`. */
export function tokenQueryOf(p: ParsedShimArgs): TokenQuery {
  const scopes = Array.isArray(p.options.scope) ? p.options.scope : undefined;
  const resource = str(p.options.resource);
  const resourceType = str(p.options.resourceType);
  const subscription = str(p.options.subscription);
  const tenant = str(p.options.tenant);
  const claims = str(p.options.claimsChallenge);
  return {
    ...(scopes?.length ? { scopes } : {}),
    ...(resource ? { resource } : {}),
    ...(resourceType ? { resourceType } : {}),
    ...(subscription ? { subscription } : {}),
    ...(tenant ? { tenant } : {}),
    ...(claims ? { claims } : {}),
    ...(p.options.forceRefresh === true ? { forceRefresh: true } : {}),
  };
}

/** The frame's `--query` error as is for azkeep; for the shim, az's one line without a hint. */
export async function asUsage<T>(p: Promise<T>, mode: Mode): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (mode === "az" && e instanceof Error) throw new ShimUsageError(e.message);
    throw e;
  }
}

/** The text a command's `value` prints as, after `--query`, in `output`. */
export async function show(
  value: unknown,
  p: ParsedShimArgs,
  output: OutputFormat,
  mode: Mode,
  options: { color: () => boolean; table?: TableTransformer | undefined },
): Promise<string> {
  const shown =
    p.globals.query !== undefined ? await asUsage(applyQuery(value, p.globals.query), mode) : value;
  // The colour check looks at stderr: only when it matters (jsonc), to keep the hot path lean.
  return formatOutput(shown, output, {
    color: output === "jsonc" && mode === "azkeep" && options.color(),
    queryActive: p.globals.query !== undefined,
    ...(options.table ? { table: options.table } : {}),
  });
}
