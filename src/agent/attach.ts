/**
 * How a client command uses the agent: through it when it runs; starting it first when
 * auto-start is on; refusing when agent-only mode is on and none can be reached; otherwise the
 * direct path (the process unseals the store itself, as without an agent).
 *
 * An agent that dies mid-request (SIGKILL, OOM) costs the client one message: it restarts the
 * agent when auto-start is on, or answers directly when agent-only mode is off.
 */
import { readConfig, type AzkeepConfig } from "../core/config.js";
import type { Context } from "../core/context.js";
import { AzkeepError } from "../core/errors.js";
import { AgentGoneError, type AgentConnection } from "./client.js";
import { reachAgent, startAgent } from "./start.js";

export type Attached<T> = { via: "agent"; value: T } | { via: "direct" };

async function configOf(ctx: Context): Promise<AzkeepConfig> {
  try {
    return await readConfig(ctx);
  } catch {
    return { version: 1 };
  }
}

/** The error of agent-only mode without a running agent. */
export function agentRequiredError(): AzkeepError {
  return new AzkeepError(
    "store_unavailable",
    "The token store is in agent-only mode and no azkeep agent runs.",
    {
      hint: "Run `azkeep agent start` (and `azkeep agent unlock` with a passphrase) to start it.",
    },
  );
}

async function once<T>(conn: AgentConnection, use: (a: AgentConnection) => Promise<T>): Promise<T> {
  try {
    return await use(conn);
  } finally {
    conn.close();
  }
}

/**
 * Runs `use` against the agent when one runs (or can be started); `direct` when the caller should
 * answer itself. `agentGone`: an earlier lane of this command found the agent gone mid-request
 * (`cli/agent-lane.ts`), so no agent here means the same as an agent that stops answering.
 */
export async function withAgent<T>(
  ctx: Context,
  use: (a: AgentConnection) => Promise<T>,
  options: { agentGone?: boolean } = {},
): Promise<Attached<T>> {
  if (ctx.env.AZKEEP_AGENT === "off") return { via: "direct" };
  let conn = await reachAgent(ctx);
  let config: AzkeepConfig | undefined;
  let gone: AgentGoneError | undefined = !conn && options.agentGone ? new AgentGoneError() : undefined;
  if (conn) {
    try {
      return { via: "agent", value: await once(conn, use) };
    } catch (e) {
      if (!(e instanceof AgentGoneError)) throw e;
      gone = e;
    }
  }
  if (gone) {
    config = await configOf(ctx);
    if (!config.agent?.auto) {
      if (config.store?.mode === "agent-only") throw gone;
      ctx.logger.warn(
        "The azkeep agent stopped answering; answering without it. Run `azkeep agent start` to start it again.",
      );
      return { via: "direct" };
    }
    ctx.logger.warn("The azkeep agent stopped answering; starting it again.");
  }
  config ??= await configOf(ctx);
  if (config.agent?.auto) {
    await startAgent(ctx, {
      ...(config.agent.idleMs ? { idleMs: config.agent.idleMs } : {}),
      ...(config.agent.maxMs ? { maxMs: config.agent.maxMs } : {}),
    });
    conn = await reachAgent(ctx);
    if (conn) return { via: "agent", value: await once(conn, use) };
  }
  if (config.store?.mode === "agent-only") throw agentRequiredError();
  return { via: "direct" };
}

/** A `PolicyDeps.delegate` that asks the agent (`undefined`: no agent, answer directly). */
export function agentDelegate(
  ctx: Context,
): (request: TokenRequestLike) => Promise<TokenResponseLike | undefined> {
  return async (request) => {
    const r = await withAgent(ctx, (a) =>
      a.getToken({
        ...(request.scopes?.length ? { scopes: request.scopes } : {}),
        ...(request.resource ? { resource: request.resource } : {}),
        ...(request.resourceType ? { resourceType: request.resourceType } : {}),
        ...(request.subscription ? { subscription: request.subscription } : {}),
        ...(request.tenant ? { tenant: request.tenant } : {}),
        ...(request.claims ? { claims: request.claims } : {}),
        ...(request.forceRefresh ? { forceRefresh: true } : {}),
      }),
    );
    return r.via === "agent" ? r.value : undefined;
  };
}

/** The fields of `core/tokens/policy.ts`'s TokenRequest the agent takes. */
interface TokenRequestLike {
  scopes?: string[];
  resource?: string;
  resourceType?: string;
  subscription?: string;
  tenant?: string;
  claims?: string;
  forceRefresh?: boolean;
}
type TokenResponseLike = Awaited<ReturnType<AgentConnection["getToken"]>>;
