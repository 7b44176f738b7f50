/**
 * Answering a parsed `az`-style command from azkeep's store, shared by the `az` shim and the
 * fast path of `azkeep account get-access-token` (both skip commander: start-up is their cost).
 * What a cached token needs is imported statically (one chunk, no chain of dynamic imports);
 * the refresh path, key providers and jmespath are loaded only when needed.
 */
import { createNodeContext, type Context } from "../core/context.js";
import { RESOURCE_TYPES, type ResourceType } from "../core/clouds.js";
import { EXIT } from "../cli/exit-codes.js";
import { accountTable } from "../cli/output/account-table.js";
import { checkQuery, commandRan } from "../cli/output/format.js";
import { findSubscription } from "../core/profile/accounts.js";
import { listAccounts } from "../core/profile/ops.js";
import { openTokenDeps } from "../core/tokens/deps.js";
import { checkSubscriptionOrTenant, toAzShape } from "../core/tokens/az-shape.js";
import { getAccessToken } from "../core/tokens/get-access-token.js";
import { withAgent } from "../agent/attach.js";
import { answerFromEndpoint } from "../exec/shim-mode.js";
import { ShimUsageError, type ParsedShimArgs } from "./argv.js";
import { errorText } from "./error-text.js";
import { writeAllSync } from "./stdio.js";
import { asUsage, chooseOutput, show, str, tokenQueryOf, type Mode } from "./present.js";

/** The Azure CLI version the shim reports: new enough for every caller (expires_on: ≥ 2.54). */
export const SHIM_AZ_VERSION = "2.67.0";

export type { Mode } from "./present.js";
export { readerGone, writeAllSync } from "./stdio.js";
export { errorText } from "./error-text.js";

export interface RunIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** Read lazily (see `abortOnSignals`). */
  readonly signal?: AbortSignal;
  /** The agent lane found the agent gone mid-request (see `withAgent`). */
  agentGone?: boolean;
}

async function answer(p: ParsedShimArgs, ctx: Context, io: RunIO, mode: Mode): Promise<unknown> {
  if (p.command === "version") {
    const v = io.env.AZKEEP_SHIM_AZ_VERSION || SHIM_AZ_VERSION;
    return { "azure-cli": v, "azure-cli-core": v, "azure-cli-telemetry": "1.1.0", extensions: {} };
  }
  const resourceType = str(p.options.resourceType);
  if (p.command === "account get-access-token") {
    if (resourceType !== undefined && !Object.hasOwn(RESOURCE_TYPES, resourceType)) {
      throw new ShimUsageError(
        `argument --resource-type: invalid choice: '${resourceType}' (choose from ${Object.keys(
          RESOURCE_TYPES,
        )
          .map((r) => `'${r}'`)
          .join(", ")})`,
      );
    }
  }
  // Inside `azkeep exec`: answered from the run's endpoint; neither the store nor the agent.
  const execEndpoint = io.env.AZKEEP_EXEC_ENDPOINT;
  if (execEndpoint && mode === "az") {
    return answerFromEndpoint(execEndpoint, {
      command: p.command,
      resource: str(p.options.resource),
      resourceType,
      scope: Array.isArray(p.options.scope) ? p.options.scope : undefined,
      subscription: str(p.options.subscription),
      tenant: str(p.options.tenant),
    });
  }
  if (p.command === "account get-access-token")
    checkSubscriptionOrTenant(str(p.options.subscription), str(p.options.tenant));
  // The agent, when it runs: the store is never opened in this process. A generic OpenID
  // sign-in (`--authority`) is not the agent's to serve: the store answers it.
  const viaAgent =
    str(p.options.authority) || str(p.options.clientId)
      ? ({ via: "direct" } as const)
      : await withAgent(
          ctx,
          async (agent): Promise<unknown> => {
            if (p.command === "account get-access-token") {
              return toAzShape(await agent.getToken(tokenQueryOf(p)), Boolean(str(p.options.tenant)));
            }
            if (p.command === "account show") {
              const subscription = str(p.options.subscription);
              return agent.getAccount(subscription ? { subscription } : {});
            }
            return agent.listAccounts(p.options.all === true ? { all: true } : {});
          },
          io.agentGone ? { agentGone: true } : {},
        );
  if (viaAgent.via === "agent") return viaAgent.value;
  const deps = await openTokenDeps(ctx);
  // Read only when the policy needs it (a refresh), so the signal handlers stay uninstalled
  // on the cached path.
  Object.defineProperty(deps, "signal", { get: () => io.signal, enumerable: true, configurable: true });
  if (p.command === "account get-access-token") {
    return getAccessToken(ctx, deps, {
      resource: str(p.options.resource),
      resourceType: resourceType as ResourceType | undefined,
      scope: Array.isArray(p.options.scope) ? p.options.scope : undefined,
      subscription: str(p.options.subscription),
      tenant: str(p.options.tenant),
      claimsChallenge: str(p.options.claimsChallenge),
      forceRefresh: p.options.forceRefresh === true,
      authority: str(p.options.authority),
      clientId: str(p.options.clientId),
    });
  }
  const [profile, activeCloud] = await Promise.all([deps.store.readProfile(), deps.activeCloud()]);
  if (p.command === "account show") {
    return findSubscription(profile, activeCloud, str(p.options.subscription));
  }
  return listAccounts(ctx, profile.subscriptions, {
    activeCloud,
    ...(p.options.all === true ? { all: true } : {}),
  });
}

/** Answers `p`; resolves the exit code. */
export async function runParsed(p: ParsedShimArgs, io: RunIO, mode: Mode): Promise<number> {
  try {
    const output = chooseOutput(p, io.env, mode);
    const started = mode === "azkeep" && p.globals.verbose ? performance.now() : 0;
    const ctx = createNodeContext({
      debug: p.globals.debug,
      // The shim stays quiet on stderr (callers read it); azkeep prints az's INFO lines.
      verbose: mode === "azkeep" && p.globals.verbose,
      // The shim never warns: callers read any stderr as trouble.
      onlyShowErrors: mode === "az" || p.globals.onlyShowErrors,
      env: io.env,
      // Lazily, as `deps.signal` below: only a wait (the store lock, a refresh) installs the handlers.
      get signal() {
        return io.signal;
      },
    });
    // A query that does not parse fails before the command acts (no store opened, no
    // warning), as in the frame; az: an argument error (exit 2), in the frame's words.
    if (p.globals.query !== undefined) await asUsage(checkQuery(p.globals.query), mode);
    const value = await answer(p, ctx, io, mode);
    io.stdout(
      await show(value, p, output, mode, {
        color: () => ctx.color,
        table: p.command === "account list" ? accountTable : undefined,
      }),
    );
    if (started) ctx.logger.info(commandRan(started));
    return EXIT.ok;
  } catch (e) {
    const { text, code } = errorText(e, mode, p.globals.debug);
    io.stderr(text);
    return code;
  }
}

/**
 * Ctrl-C / SIGTERM abort the work (a refresh) instead of killing the process mid-write. The
 * handlers are installed when `signal` is first read — by the refresh path only: a cached
 * token is answered before a signal could matter, and installing them costs ~0.5 ms.
 */
export function abortOnSignals(): { readonly signal: AbortSignal; dispose(): void } {
  let controller: AbortController | undefined;
  const onSignal = () => {
    controller?.abort(Object.assign(new Error("Interrupted"), { name: "AbortError" }));
    // A wait that does not listen (a bug) must not keep the process: files are replaced by
    // rename only, so ending anywhere leaves them whole.
    setTimeout(() => {
      writeAllSync(2, "ERROR: Interrupted.\n");
      process.exit(EXIT.interrupted);
    }, 3000).unref();
  };
  return {
    get signal() {
      if (!controller) {
        controller = new AbortController();
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
      }
      return controller.signal;
    },
    dispose() {
      if (!controller) return;
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
