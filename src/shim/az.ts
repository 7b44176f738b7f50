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
 * Start-up is the shim's whole cost, so it imports only what get-access-token needs: no
 * commander, no sign-in flows; the refresh path loads those when it must.
 */
import { dirname } from "node:path";
import { createNodeContext } from "../core/context.js";
import { AzkeepError } from "../core/errors.js";
import { redact } from "../core/redact.js";
import type { ResourceType } from "../core/clouds.js";
import type { SubscriptionEntry } from "../core/profile/types.js";
import { EXIT, exitCodeFor } from "../cli/exit-codes.js";
import { applyQuery, formatOutput, isOutputFormat } from "../cli/output/format.js";
import { parseShimArgs, ShimUsageError, type ParsedShimArgs } from "./argv.js";

/** The Azure CLI version the shim reports: new enough for every caller (expires_on: ≥ 2.54). */
export const SHIM_AZ_VERSION = "2.67.0";

const RESOURCE_TYPES = new Set(["oss-rdbms", "arm", "aad-graph", "ms-graph", "batch", "media", "data-lake"]);

export interface ShimIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** The folder the shim runs from (skipped when looking for the real az). */
  selfDir: string;
}

function str(v: string | string[] | boolean | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

async function answer(p: ParsedShimArgs, io: ShimIO): Promise<unknown> {
  if (p.command === "version") {
    const v = io.env.AZKEEP_SHIM_AZ_VERSION || SHIM_AZ_VERSION;
    return { "azure-cli": v, "azure-cli-core": v, "azure-cli-telemetry": "1.1.0", extensions: {} };
  }
  const ctx = createNodeContext({ debug: p.globals.debug, onlyShowErrors: true, env: io.env });
  const { openTokenDeps } = await import("../core/tokens/deps.js");
  const deps = await openTokenDeps(ctx);
  if (p.command === "account get-access-token") {
    const { getAccessToken } = await import("../core/tokens/get-access-token.js");
    const resourceType = str(p.options.resourceType);
    if (resourceType !== undefined && !RESOURCE_TYPES.has(resourceType)) {
      throw new ShimUsageError(
        `argument --resource-type: invalid choice: '${resourceType}' (choose from ${[...RESOURCE_TYPES].map((r) => `'${r}'`).join(", ")})`,
      );
    }
    return getAccessToken(ctx, deps, {
      resource: str(p.options.resource),
      resourceType: resourceType as ResourceType | undefined,
      scope: Array.isArray(p.options.scope) ? p.options.scope : undefined,
      subscription: str(p.options.subscription),
      tenant: str(p.options.tenant),
    });
  }
  const profile = await deps.store.readProfile();
  if (p.command === "account show") {
    const { findSubscription } = await import("../core/tokens/account.js");
    return findSubscription(profile, str(p.options.subscription));
  }
  // account list: az shows Enabled subscriptions unless --all, with `cloudName`.
  const all = p.options.all === true;
  return profile.subscriptions
    .filter((s) => all || s.state === "Enabled")
    .map((s: SubscriptionEntry) => {
      const { environmentName, ...rest } = s;
      return { cloudName: environmentName, ...rest };
    });
}

function errorText(e: unknown): { text: string; code: number } {
  if (e instanceof ShimUsageError) {
    return { text: `ERROR: ${e.message}\n`, code: EXIT.usage };
  }
  if (e instanceof AzkeepError) {
    let text = `ERROR: ${redact(e.message)}\n`;
    if (e.hint) text += `${redact(e.hint)}\n`;
    // Not signed in at all: say so in the words callers look for (JS and Python treat stderr
    // containing "az login" without "AADSTS" as "not signed in": try the next credential).
    if (e.code === "auth_required" && !/AADSTS/.test(e.message)) {
      text += "This az is azkeep's shim: sign in with `azkeep login` (not az login).\n";
    }
    return { text, code: exitCodeFor(e.code) };
  }
  const message = e instanceof Error ? e.message : String(e);
  return {
    text: `ERROR: ${redact(message)}\nThis is a bug in azkeep's az shim; run the command again with --debug and report the output.\n`,
    code: EXIT.error,
  };
}

/** Runs the shim; resolves the exit code. */
export async function runShim(argv: readonly string[], io: ShimIO): Promise<number> {
  let parsed: ParsedShimArgs | undefined;
  try {
    parsed = parseShimArgs(argv);
  } catch (e) {
    const { text, code } = errorText(e);
    io.stderr(text);
    return code;
  }
  if (!parsed) {
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
  try {
    const value = await answer(parsed, io);
    let output = parsed.globals.output ?? io.env.AZURE_CORE_OUTPUT ?? "json";
    if (!isOutputFormat(output)) {
      if (parsed.globals.output !== undefined) {
        throw new ShimUsageError(
          `argument --output/-o: invalid choice: '${output}' (choose from 'json', 'jsonc', 'none', 'table', 'tsv', 'yaml', 'yamlc')`,
        );
      }
      output = "json";
    }
    const shown = parsed.globals.query ? await applyQuery(value, parsed.globals.query) : value;
    io.stdout(await formatOutput(shown, isOutputFormat(output) ? output : "json", { color: false }));
    return EXIT.ok;
  } catch (e) {
    const { text, code } = errorText(e);
    io.stderr(text);
    return code;
  }
}

/** Entry point used by `shim/az`. */
export async function main(argv: readonly string[], scriptPath: string): Promise<number> {
  return runShim(argv, {
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    env: process.env,
    selfDir: dirname(scriptPath),
  });
}
