/**
 * Where the endpoint's tokens come from. Today: the exec process itself, which opened the
 * sealed store once at start (the key provider asked once, before the child runs) and keeps it
 * for the child's lifetime, with the usual token policy underneath (`core/tokens/policy.ts`:
 * cache with a 5-minute margin, single flight across processes, retries with backoff).
 *
 * In front of the policy sits a small in-memory cache with single flight per audience: the
 * endpoint's hot path (many requests for a cached token) then costs no file read, no unsealing
 * and no lock. The agent, when it runs, is another `TokenBackend` (it has its own cache).
 */
import type { Context } from "../core/context.js";
import { REUSE_MARGIN_S } from "../core/tokens/cache.js";
import { acquireToken, type PolicyDeps } from "../core/tokens/policy.js";

export interface RunToken {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresOn: number;
}

/** The process a request comes from (a descendant of the run's child), when known. */
export interface Caller {
  pid: number | undefined;
}

/** What the endpoint asks for: one audience, in the run's fixed subscription/tenant. */
export interface TokenBackend {
  token(resource: string, caller?: Caller): Promise<RunToken>;
}

export interface RunAccount {
  /** The subscription id every token of the run is for. */
  subscription: string;
  /** The tenant, when the run was given `--tenant` (else the subscription's own). */
  tenant?: string;
}

/** The in-memory backend over the token policy. */
export function createPolicyBackend(ctx: Context, deps: PolicyDeps, account: RunAccount): TokenBackend {
  const cache = new Map<string, RunToken>();
  const inflight = new Map<string, Promise<RunToken>>();
  const nowS = () => Math.floor(ctx.clock.now() / 1000);
  return {
    token(resource) {
      const hit = cache.get(resource);
      if (hit && hit.expiresOn - nowS() > REUSE_MARGIN_S) return Promise.resolve(hit);
      const running = inflight.get(resource);
      if (running) return running;
      const p = acquireToken(ctx, deps, {
        resource,
        subscription: account.subscription,
        ...(account.tenant ? { tenant: account.tenant } : {}),
      })
        .then((r) => {
          const t: RunToken = { accessToken: r.accessToken, tokenType: r.tokenType, expiresOn: r.expiresOn };
          cache.set(resource, t);
          return t;
        })
        .finally(() => inflight.delete(resource));
      inflight.set(resource, p);
      return p;
    },
  };
}

export interface AgentRun {
  id: string;
  allowScopes?: string[];
  /** The run's child, until it runs: the exec process itself. */
  childPid(): number;
}

/**
 * The agent as the token source: every request goes to it (its release policy decides per
 * caller, with the run's id, child and allowlist), so no cache sits in front. When the agent
 * stops answering and agent-only mode is off, `fallback` (this process's own store) answers.
 */
export function createAgentBackend(
  ctx: Context,
  account: RunAccount,
  run: AgentRun,
  fallback: () => Promise<TokenBackend>,
): TokenBackend {
  return {
    async token(resource, caller) {
      const { withAgent } = await import("../agent/attach.js");
      const r = await withAgent(ctx, (agent) =>
        agent.getToken(
          {
            resource,
            subscription: account.subscription,
            ...(account.tenant ? { tenant: account.tenant } : {}),
          },
          {
            id: run.id,
            childPid: caller?.pid ?? run.childPid(),
            ...(run.allowScopes?.length ? { allowScopes: run.allowScopes } : {}),
          },
        ),
      );
      if (r.via === "agent") return r.value;
      return (await fallback()).token(resource, caller);
    },
  };
}
