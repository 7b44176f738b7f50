import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuthenticationRequiredError, IdentityProviderError, NetworkError } from "../../src/core/errors.js";
import type { Profile, SubscriptionEntry } from "../../src/core/profile/types.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import { emptySecrets, type Secrets } from "../../src/core/store/types.js";
import { createMemoryFailureMemo } from "../../src/core/tokens/memo.js";
import { acquireToken, type Grant, type PolicyDeps, type TokenSource } from "../../src/core/tokens/policy.js";
import { fakeContext, type FakeContext } from "./fakes.js";

const TENANT = "11111111-1111-1111-1111-111111111111";
const TENANT2 = "22222222-2222-2222-2222-222222222222";
const SUB = "bbbbbbbb-0000-0000-0000-000000000001";
const ARM = "https://management.core.windows.net//.default";
const CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

function sub(over: Partial<SubscriptionEntry> = {}): SubscriptionEntry {
  return {
    id: SUB,
    name: "Contoso Dev",
    state: "Enabled",
    user: { name: "alice@contoso.com", type: "user" },
    isDefault: true,
    tenantId: TENANT,
    environmentName: "AzureCloud",
    homeTenantId: TENANT,
    ...over,
  };
}

function userSecrets(nowS: number, atLeftS?: number): Secrets {
  const s = emptySecrets();
  s.refreshTokens.push({
    homeAccountId: "oid.tid",
    username: "alice@contoso.com",
    clientId: CLIENT,
    environment: "login.microsoftonline.com",
    cloud: "AzureCloud",
    homeTenantId: TENANT,
    secret: "rt-1",
    familyId: "1",
    lastModified: nowS - 100,
  });
  if (atLeftS !== undefined) {
    s.accessTokens.push({
      homeAccountId: "oid.tid",
      principal: "alice@contoso.com",
      clientId: CLIENT,
      environment: "login.microsoftonline.com",
      cloud: "AzureCloud",
      tenantId: TENANT,
      target: `https://management.core.windows.net//user_impersonation ${ARM}`,
      secret: "at-old",
      tokenType: "Bearer",
      expiresOn: nowS + atLeftS,
      cachedAt: nowS - 3000,
    });
  }
  return s;
}

interface Calls {
  refresh: { tenant: string; refreshToken: string; scopes: string[]; claims?: string }[];
  sp: { tenant: string; clientId: string; kind: string }[];
  mi: { resource: string; clientId?: string }[];
}

/** A token source that answers from a script: each call takes the next outcome. */
function scriptedSource(
  ctx: FakeContext,
  outcomes: (Error | "ok")[] = [],
): { source: TokenSource; calls: Calls } {
  const calls: Calls = { refresh: [], sp: [], mi: [] };
  let i = 0;
  let n = 0;
  const next = (tenant: string, scope: string): Grant => {
    const o = outcomes[i++] ?? "ok";
    if (o !== "ok") throw o;
    n++;
    return {
      accessToken: `at-new-${n}`,
      tokenType: "Bearer",
      expiresOn: Math.floor(ctx.clock.now() / 1000) + 3600,
      refreshToken: `rt-${n + 1}`,
      scope,
      tenantId: tenant,
    };
  };
  const source: TokenSource = {
    async refresh(_c, req) {
      calls.refresh.push({
        tenant: req.tenant,
        refreshToken: req.refreshToken,
        scopes: req.scopes,
        ...(req.claims ? { claims: req.claims } : {}),
      });
      return next(req.tenant, req.scopes.join(" "));
    },
    async servicePrincipal(_c, req) {
      calls.sp.push({ tenant: req.tenant, clientId: req.clientId, kind: req.credential.kind });
      const g = next(req.tenant, req.scopes.join(" "));
      delete g.refreshToken;
      return g;
    },
    async managedIdentity(_c, req) {
      calls.mi.push({ resource: req.resource, ...(req.clientId ? { clientId: req.clientId } : {}) });
      const g = next(TENANT, `${req.resource}/.default`);
      delete g.refreshToken;
      return g;
    },
  };
  return { source, calls };
}

function setup(
  opts: { profile?: Profile; secrets?: (nowS: number) => Secrets; outcomes?: (Error | "ok")[] } = {},
) {
  const ctx = fakeContext();
  const nowS = Math.floor(ctx.clock.now() / 1000);
  const store = createMemoryStore({
    profile: opts.profile ?? { subscriptions: [sub()] },
    secrets: opts.secrets ? opts.secrets(nowS) : userSecrets(nowS),
  });
  const { source, calls } = scriptedSource(ctx, opts.outcomes);
  const deps: PolicyDeps = { store, source, memo: createMemoryFailureMemo(() => ctx.clock.now()) };
  return { ctx, nowS, store, calls, deps };
}

const net = (status?: number, retryAfterMs?: number) =>
  new NetworkError(`HTTP ${status ?? "reset"}`, {
    ...(status !== undefined ? { status } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });

describe("token policy: cache", () => {
  it("serves a cached token with more than 5 minutes left, without the network", async () => {
    const { ctx, calls, deps } = setup({ secrets: (n) => userSecrets(n, 310) });
    const r = await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(r.accessToken, "at-old");
    assert.equal(r.source, "cache");
    assert.equal(r.subscription, SUB);
    assert.equal(r.tenant, TENANT);
    assert.equal(calls.refresh.length, 0);
  });

  it("refreshes a token with less than 5 minutes left, stores it and the rotated refresh token", async () => {
    const { ctx, calls, deps, store, nowS } = setup({ secrets: (n) => userSecrets(n, 290) });
    const r = await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(r.accessToken, "at-new-1");
    assert.equal(r.source, "network");
    assert.equal(r.expiresOn, nowS + 3600);
    assert.deepEqual(calls.refresh, [{ tenant: TENANT, refreshToken: "rt-1", scopes: [ARM] }]);
    const s = await store.readSecrets();
    assert.equal(s.refreshTokens[0]!.secret, "rt-2");
    assert.equal(s.accessTokens.length, 1, "the old token for the same scope is replaced");
    const again = await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(again.accessToken, "at-new-1");
    assert.equal(again.source, "cache");
    assert.equal(calls.refresh.length, 1);
  });

  it("refreshes when refresh_in has passed even with more than 5 minutes left", async () => {
    const { ctx, calls, deps } = setup({
      secrets: (n) => {
        const s = userSecrets(n, 3000);
        s.accessTokens[0]!.refreshOn = n - 1;
        return s;
      },
    });
    await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(calls.refresh.length, 1);
  });

  it("one refresh token serves every resource and every tenant", async () => {
    const { ctx, calls, deps } = setup({ secrets: (n) => userSecrets(n, 3000) });
    const graph = await acquireToken(ctx, deps, { scopes: ["https://graph.microsoft.com//.default"] });
    const other = await acquireToken(ctx, deps, { scopes: [ARM], tenant: TENANT2 });
    assert.equal(graph.source, "network");
    assert.equal(other.tenant, TENANT2);
    assert.deepEqual(
      calls.refresh.map((c) => [c.tenant, c.scopes[0], c.refreshToken]),
      [
        [TENANT, "https://graph.microsoft.com//.default", "rt-1"],
        [TENANT2, ARM, "rt-2"],
      ],
    );
    // each is cached under its own tenant/scope now, and the home-tenant ARM token is untouched
    assert.equal((await acquireToken(ctx, deps, { scopes: [ARM] })).accessToken, "at-old");
    assert.equal((await acquireToken(ctx, deps, { scopes: [ARM], tenant: TENANT2 })).source, "cache");
  });

  it("a claims challenge skips the cache and is passed on", async () => {
    const { ctx, calls, deps } = setup({ secrets: (n) => userSecrets(n, 3000) });
    const claims = '{"access_token":{"nbf":{"essential":true,"value":"1"}}}';
    const r = await acquireToken(ctx, deps, { scopes: [ARM], claims });
    assert.equal(r.source, "network");
    assert.equal(calls.refresh[0]!.claims, claims);
  });

  it("N concurrent requests on an expired token make one token request", async () => {
    const { ctx, calls, deps } = setup({ secrets: (n) => userSecrets(n, -10) });
    const results = await Promise.all(
      Array.from({ length: 25 }, () => acquireToken(ctx, deps, { scopes: [ARM] })),
    );
    assert.equal(calls.refresh.length, 1);
    assert.ok(results.every((r) => r.accessToken === "at-new-1"));
  });
});

describe("token policy: accounts", () => {
  const two = {
    subscriptions: [
      sub(),
      sub({ id: "bbbbbbbb-0000-0000-0000-000000000002", name: "My Prod Sub", isDefault: false }),
    ],
  };
  it("finds a subscription by name with spaces, in either case, with or without literal quotes", async () => {
    for (const name of ["My Prod Sub", "my prod sub", '"My Prod Sub"']) {
      const { ctx, deps } = setup({ profile: two });
      const r = await acquireToken(ctx, deps, { scopes: [ARM], subscription: name });
      assert.equal(r.subscription, "bbbbbbbb-0000-0000-0000-000000000002");
    }
  });
  it("an unknown subscription is named in the error, with the next step", async () => {
    const { ctx, deps } = setup({ profile: two });
    await assert.rejects(
      acquireToken(ctx, deps, { scopes: [ARM], subscription: "nope" }),
      (e: Error & { hint?: string }) => {
        assert.match(e.message, /Subscription 'nope' not found/);
        assert.match(e.hint ?? "", /azkeep account list/);
        return true;
      },
    );
  });
  it("only the active cloud's accounts are used, as az and `account show` do", async () => {
    const china = sub({ id: "cccccccc-0000-0000-0000-000000000001", environmentName: "AzureChinaCloud" });
    const profile = { subscriptions: [sub({ isDefault: false }), { ...china, isDefault: true }] };
    const { ctx, deps } = setup({ profile, secrets: (n) => userSecrets(n, 3600) });
    // The one default is in another cloud: AzureCloud has none.
    await assert.rejects(acquireToken(ctx, deps, { scopes: [ARM] }), /No subscription found/);
    // Named by id: found in the active cloud only.
    assert.equal((await acquireToken(ctx, deps, { scopes: [ARM], subscription: SUB })).source, "cache");
    await assert.rejects(
      acquireToken(ctx, deps, { scopes: [ARM], subscription: china.id }),
      /Subscription 'cccccccc-0000-0000-0000-000000000001' not found/,
    );
    // Only the China cloud active: its account, whose cloud has no sign-in here.
    await assert.rejects(
      acquireToken(ctx, { ...deps, activeCloud: () => "AzureChinaCloud" }, { scopes: [ARM] }),
      AuthenticationRequiredError,
    );
  });
  it("a name two identities reach is one subscription; two subscriptions of one name are refused", async () => {
    const sp = sub({ user: { name: "app-id", type: "servicePrincipal" }, isDefault: false });
    const { ctx, deps } = setup({
      profile: { subscriptions: [sp, sub()] },
      secrets: (n) => userSecrets(n, 3600),
    });
    // The default identity (alice) wins over the newer service principal.
    const r = await acquireToken(ctx, deps, { scopes: [ARM], subscription: "contoso dev" });
    assert.equal(r.source, "cache");
    const twins = {
      subscriptions: [sub(), sub({ id: "bbbbbbbb-0000-0000-0000-000000000009", isDefault: false })],
    };
    const t = setup({ profile: twins });
    await assert.rejects(
      acquireToken(t.ctx, t.deps, { scopes: [ARM], subscription: "Contoso Dev" }),
      (e: Error) => {
        assert.match(
          e.message,
          /^Multiple subscriptions with the name 'Contoso Dev' found\. Specify the subscription ID\.$/,
        );
        assert.equal((e as Error & { code?: string }).code, "not_found", "exit 1, as az");
        return true;
      },
    );
  });
  it("no accounts → sign in", async () => {
    const { ctx, deps } = setup({ profile: { subscriptions: [] } });
    await assert.rejects(acquireToken(ctx, deps, { scopes: [ARM] }), AuthenticationRequiredError);
  });
  it("service principals re-acquire with their credential, in the tenant asked", async () => {
    const { ctx, calls, deps } = setup({
      profile: { subscriptions: [sub({ user: { name: "app-id", type: "servicePrincipal" } })] },
      secrets: () => {
        const s = emptySecrets();
        s.servicePrincipals.push({
          clientId: "app-id",
          tenantId: TENANT,
          cloud: "AzureCloud",
          credential: { kind: "federated-file", path: "/var/run/token" },
        });
        return s;
      },
    });
    const r = await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(r.accessToken, "at-new-1");
    await acquireToken(ctx, deps, { scopes: [ARM], tenant: TENANT2 });
    assert.deepEqual(calls.sp, [
      { tenant: TENANT, clientId: "app-id", kind: "federated-file" },
      { tenant: TENANT2, clientId: "app-id", kind: "federated-file" },
    ]);
    assert.equal((await acquireToken(ctx, deps, { scopes: [ARM] })).source, "cache");
  });
  it("managed identities ask their endpoint for the resource; another tenant is refused", async () => {
    const { ctx, calls, deps } = setup({
      profile: {
        subscriptions: [
          sub({
            user: {
              name: "userAssignedIdentity",
              type: "servicePrincipal",
              assignedIdentityInfo: "MSIClient-cid",
            },
          }),
        ],
      },
      secrets: () => emptySecrets(),
    });
    await acquireToken(ctx, deps, { scopes: ["https://vault.azure.net/.default"] });
    assert.deepEqual(calls.mi, [{ resource: "https://vault.azure.net", clientId: "cid" }]);
    await assert.rejects(acquireToken(ctx, deps, { scopes: [ARM], tenant: TENANT2 }), /managed identity/);
  });
});

describe("token policy: failures", () => {
  it("transient failures are retried with backoff and then succeed", async () => {
    const { ctx, calls, deps } = setup({ secrets: (n) => userSecrets(n, -10), outcomes: [net(503), net()] });
    const r = await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(r.accessToken, "at-new-1");
    assert.equal(calls.refresh.length, 3);
    assert.equal(ctx.slept.length, 2);
    assert.ok(ctx.slept[1]! > ctx.slept[0]!, "backoff grows");
  });

  it("429 Retry-After is honoured", async () => {
    const { ctx, deps } = setup({ secrets: (n) => userSecrets(n, -10), outcomes: [net(429, 2000)] });
    await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.deepEqual(ctx.slept, [2000]);
  });

  it("persistent failures end after a bounded number of attempts; the refresh token survives", async () => {
    const outcomes = Array.from({ length: 20 }, () => net(500));
    const { ctx, calls, deps, store } = setup({ secrets: (n) => userSecrets(n, -10), outcomes });
    await assert.rejects(acquireToken(ctx, deps, { scopes: [ARM] }), NetworkError);
    assert.equal(calls.refresh.length, 4);
    const s = await store.readSecrets();
    assert.equal(s.refreshTokens.length, 1);
    assert.equal(s.refreshTokens[0]!.secret, "rt-1");
  });

  it("a still-valid token is served when the IdP keeps failing; later callers skip the IdP for a while", async () => {
    const outcomes = Array.from({ length: 20 }, () => net(502));
    const { ctx, calls, deps } = setup({ secrets: (n) => userSecrets(n, 120), outcomes });
    const r = await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(r.accessToken, "at-old");
    assert.equal(r.source, "fallback");
    assert.equal(calls.refresh.length, 2, "the fallback policy tries twice");
    const r2 = await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(r2.source, "fallback");
    assert.equal(calls.refresh.length, 2, "the memo spares the IdP");
    ctx.advance(6_000);
    await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(calls.refresh.length, 4, "after the memo expires the IdP is asked again");
  });

  it("a Retry-After longer than the budget is not waited for", async () => {
    const { ctx, calls, deps } = setup({
      secrets: (n) => userSecrets(n, 100),
      outcomes: [net(429, 120_000)],
    });
    const r = await acquireToken(ctx, deps, { scopes: [ARM] });
    assert.equal(r.source, "fallback");
    assert.equal(calls.refresh.length, 1);
    assert.deepEqual(ctx.slept, []);
  });

  it("invalid_grant is not retried, keeps the refresh token and names the login command", async () => {
    const err = new IdentityProviderError("invalid_grant", "AADSTS700082: The refresh token has expired.", {
      code: "auth_required",
      hint: "The sign-in has expired. Run:\nazkeep login --tenant x",
    });
    const { ctx, calls, deps, store } = setup({ secrets: (n) => userSecrets(n, -10), outcomes: [err] });
    await assert.rejects(acquireToken(ctx, deps, { scopes: [ARM] }), (e: IdentityProviderError) => {
      assert.equal(e.code, "auth_required");
      assert.match(e.hint ?? "", /azkeep login/);
      return true;
    });
    assert.equal(calls.refresh.length, 1);
    assert.equal((await store.readSecrets()).refreshTokens[0]!.secret, "rt-1");
  });

  it("invalid_grant does not fall back to an aging token either", async () => {
    const err = new IdentityProviderError("interaction_required", "AADSTS50076: MFA", {
      code: "auth_required",
    });
    const { ctx, deps } = setup({ secrets: (n) => userSecrets(n, 100), outcomes: [err] });
    await assert.rejects(acquireToken(ctx, deps, { scopes: [ARM] }), IdentityProviderError);
  });
});
