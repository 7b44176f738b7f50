/**
 * AzkeepCredential as a TokenCredential, in process, over the memory store and a scripted token
 * source (the real SDK round trip is in test/shim/azure-sdk.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuthenticationRequiredError } from "../../src/core/errors.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import { emptySecrets } from "../../src/core/store/types.js";
import { createMemoryFailureMemo } from "../../src/core/tokens/memo.js";
import type { TokenSource } from "../../src/core/tokens/policy.js";
import { AzkeepCredential } from "../../src/lib/index.js";
import { fakeContext } from "./fakes.js";

function setup(signedIn = true) {
  const ctx = fakeContext();
  const nowS = Math.floor(ctx.clock.now() / 1000);
  const secrets = emptySecrets();
  if (signedIn)
    secrets.refreshTokens.push({
      homeAccountId: "o.t",
      username: "alice@contoso.com",
      clientId: "c",
      environment: "login.microsoftonline.com",
      cloud: "AzureCloud",
      homeTenantId: "t1",
      secret: "rt",
      lastModified: nowS,
    });
  const store = createMemoryStore({
    profile: {
      subscriptions: signedIn
        ? [
            {
              id: "s1",
              name: "Sub",
              state: "Enabled",
              user: { name: "alice@contoso.com", type: "user" },
              isDefault: true,
              tenantId: "t1",
              environmentName: "AzureCloud",
            },
          ]
        : [],
    },
    secrets,
  });
  const calls: { tenant: string; scopes: string[]; claims?: string }[] = [];
  const source: TokenSource = {
    async refresh(_c, req) {
      calls.push({ tenant: req.tenant, scopes: req.scopes, ...(req.claims ? { claims: req.claims } : {}) });
      return {
        accessToken: `at-${calls.length}`,
        tokenType: "Bearer",
        expiresOn: nowS + 3600,
        scope: req.scopes.join(" "),
        tenantId: req.tenant,
      };
    },
    servicePrincipal: () => Promise.reject(new Error("unused")),
    managedIdentity: () => Promise.reject(new Error("unused")),
  };
  const credential = new AzkeepCredential({
    context: ctx,
    deps: { store, source, memo: createMemoryFailureMemo(() => ctx.clock.now()) },
  });
  return { ctx, nowS, calls, credential };
}

describe("AzkeepCredential", () => {
  it("returns a token with its expiry and refreshAfter 5 minutes before it; caches it", async () => {
    const { nowS, calls, credential } = setup();
    const t = await credential.getToken("https://management.azure.com/.default");
    assert.equal(t.token, "at-1");
    assert.equal(t.tokenType, "Bearer");
    assert.equal(t.expiresOnTimestamp, (nowS + 3600) * 1000);
    assert.equal(t.refreshAfterTimestamp, (nowS + 3300) * 1000);
    assert.equal((await credential.getToken(["https://management.azure.com/.default"])).token, "at-1");
    assert.equal(calls.length, 1);
  });

  it("honours tenantId and claims (a claims challenge skips the cache)", async () => {
    const { calls, credential } = setup();
    await credential.getToken("https://graph.microsoft.com/.default", { tenantId: "t2" });
    await credential.getToken("https://graph.microsoft.com/.default", {
      tenantId: "t2",
      claims: '{"access_token":{}}',
    });
    assert.deepEqual(
      calls.map((c) => [c.tenant, c.claims]),
      [
        ["t2", undefined],
        ["t2", '{"access_token":{}}'],
      ],
    );
  });

  it("not signed in: AuthenticationRequiredError, which ChainedTokenCredential skips", async () => {
    const { credential } = setup(false);
    await assert.rejects(credential.getToken("https://management.azure.com/.default"), (e: Error) => {
      assert.ok(e instanceof AuthenticationRequiredError);
      assert.equal(e.name, "AuthenticationRequiredError");
      return true;
    });
  });

  it("rejects an empty scope list with a clear message", async () => {
    const { credential } = setup();
    await assert.rejects(credential.getToken([]), /needs at least one scope/);
  });
});
