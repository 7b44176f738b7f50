/**
 * azkeep as a library. `AzkeepCredential` implements `@azure/core-auth`'s `TokenCredential`,
 * so any Azure SDK client in Node gets its tokens from azkeep's sealed store — the same cache,
 * the same single-flight refresh as `azkeep account get-access-token`, without a child process:
 *
 * ```ts
 * import { AzkeepCredential } from "azkeep";
 * import { ResourceManagementClient } from "@azure/arm-resources";
 * const client = new ResourceManagementClient(new AzkeepCredential(), subscriptionId);
 * ```
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import { createNodeContext, type Context } from "../core/context.js";
import { AzkeepError } from "../core/errors.js";
import type { PolicyDeps, TokenResponse } from "../core/tokens/policy.js";

export { createNodeContext, resolvePaths } from "../core/context.js";
export type { Context, Env, Paths } from "../core/context.js";
export {
  AzkeepError,
  AuthenticationRequiredError,
  IdentityProviderError,
  NetworkError,
  UsageError,
  isAzkeepError,
} from "../core/errors.js";
export type { ErrorCode } from "../core/errors.js";
export { decodeJwt } from "../core/jwt.js";
export type { DecodedJwt } from "../core/jwt.js";
export { acquireToken } from "../core/tokens/policy.js";
export type { PolicyDeps, TokenRequest, TokenResponse, TokenSource } from "../core/tokens/policy.js";
export { getAccessToken } from "../core/tokens/get-access-token.js";
export type { AzAccessToken, GetAccessTokenOptions } from "../core/tokens/get-access-token.js";
export { openTokenDeps } from "../core/tokens/deps.js";
export { BUILTIN_CLOUDS, resourceToScope } from "../core/clouds.js";
export { openStore, openFileStore, migrateStore } from "../core/store/index.js";
export type {
  FileStore,
  Store,
  StoreOptions,
  StoreState,
  Secrets,
  ProviderName,
} from "../core/store/index.js";
// The agent's client (docs/agent.md): for tools that talk to a running agent themselves.
export { AgentConnection, AgentGoneError, connectAgent } from "../agent/client.js";
export { agentSocketPath, PROTOCOL_VERSION } from "../agent/protocol.js";
export type { AgentStatus, AgentToken, RunInfo, TokenQuery } from "../agent/protocol.js";
export type { Cloud } from "../core/clouds.js";

export interface AzkeepCredentialOptions {
  /** Use this subscription's identity and tenant (id or name); default: the default subscription. */
  subscription?: string;
  /** Ask this tenant unless `getToken`'s options name another. */
  tenantId?: string;
  /** Environment to read (`AZKEEP_CONFIG_DIR`, proxies, …); default `process.env`. */
  env?: Record<string, string | undefined>;
  /** A ready Context (tests, embedding); wins over `env`. */
  context?: Context;
  /** Ready dependencies (a store of your own); default: azkeep's sealed store. */
  deps?: PolicyDeps;
}

/**
 * A `TokenCredential` backed by azkeep. Not signed in → `AuthenticationRequiredError` (name
 * `AuthenticationRequiredError`, so `ChainedTokenCredential` tries the next credential);
 * claims challenges are honoured (they skip the cache); `abortSignal` cancels a refresh.
 */
export class AzkeepCredential implements TokenCredential {
  readonly #options: AzkeepCredentialOptions;
  #ctx: Context | undefined;
  #deps: Promise<PolicyDeps> | undefined;

  constructor(options: AzkeepCredentialOptions = {}) {
    this.#options = options;
  }

  #context(): Context {
    this.#ctx ??=
      this.#options.context ??
      createNodeContext({ env: this.#options.env ?? process.env, onlyShowErrors: true });
    return this.#ctx;
  }

  async #dependencies(): Promise<PolicyDeps> {
    if (this.#options.deps) return this.#options.deps;
    // Through the azkeep agent when it runs (the refresh token then never enters this process).
    this.#deps ??= Promise.all([import("../core/tokens/deps.js"), import("../agent/attach.js")]).then(
      async ([{ openTokenDeps }, { agentDelegate }]) => ({
        ...(await openTokenDeps(this.#context())),
        delegate: agentDelegate(this.#context()),
      }),
    );
    try {
      return await this.#deps;
    } catch (e) {
      this.#deps = undefined; // let a later call retry (the keyring may come up)
      throw e;
    }
  }

  async getToken(scopes: string | string[], options: GetTokenOptions = {}): Promise<AccessToken> {
    const list = (Array.isArray(scopes) ? scopes : [scopes]).filter(Boolean);
    if (list.length === 0) {
      throw new AzkeepError("bad_input", "AzkeepCredential.getToken needs at least one scope.", {
        hint: "Pass e.g. https://management.azure.com/.default.",
      });
    }
    const ctx = this.#context();
    const base = await this.#dependencies();
    const deps: PolicyDeps = options.abortSignal
      ? { ...base, signal: toAbortSignal(options.abortSignal) }
      : base;
    const { acquireToken } = await import("../core/tokens/policy.js");
    const tenant = options.tenantId ?? this.#options.tenantId;
    const r: TokenResponse = await acquireToken(ctx, deps, {
      scopes: list,
      ...(this.#options.subscription ? { subscription: this.#options.subscription } : {}),
      ...(tenant ? { tenant } : {}),
      ...(options.claims ? { claims: options.claims } : {}),
    });
    return {
      token: r.accessToken,
      expiresOnTimestamp: r.expiresOn * 1000,
      // Ask again when the policy would refresh (5 minutes before expiry).
      refreshAfterTimestamp: Math.max(ctx.clock.now(), (r.expiresOn - 300) * 1000),
      tokenType: "Bearer",
    };
  }
}

/** core-auth's `AbortSignalLike` as a real `AbortSignal` (the policy combines signals). */
function toAbortSignal(like: NonNullable<GetTokenOptions["abortSignal"]>): AbortSignal {
  if (like instanceof AbortSignal) return like;
  const c = new AbortController();
  if (like.aborted) c.abort();
  else like.addEventListener("abort", () => c.abort(), { once: true });
  return c.signal;
}
