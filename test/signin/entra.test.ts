/**
 * Every Entra sign-in flow against the emulator, in-process with a memory store: device code,
 * ROPC, service principals (secret, certificate, federated token and file), managed identity
 * (IMDS and App Service), tenant discovery with az's MFA and no-subscription warnings, the
 * side-by-side rule, logout, and bad input that must leave nothing stored.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import type { Cloud } from "../../src/core/clouds.js";
import { acquireForServicePrincipal, acquireWithRefreshToken } from "../../src/core/flows/token.js";
import { listAccounts, logout, setAccount, showAccount } from "../../src/core/profile/ops.js";
import { login, refreshAccounts, type LoginRequest } from "../../src/core/signin.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import type { Store } from "../../src/core/store/types.js";
import {
  DEFAULT_SP_CERT_PEM,
  DEFAULT_SP_KEY_PEM,
  mintFederatedToken,
  type Emulator,
} from "../../src/emulator/index.js";
import {
  ALICE,
  CONTOSO,
  DEV_SUB,
  FABRIKAM_SUB,
  LEGACY_SUB,
  MI_SYSTEM,
  MI_USER,
  PROD_SUB,
  SP,
  TAILSPIN,
  WOODGROVE,
  WOODGROVE_SUB,
  emulator,
  emulatorCloud,
} from "./emulator.js";
import { freePort, testContext } from "./helpers.js";

type Sub = Record<string, unknown>;
const ids = (subs: Sub[]) => subs.map((s) => s.id).sort();

async function assertNothingStored(store: Store): Promise<void> {
  const [p, s] = await Promise.all([store.readProfile(), store.readSecrets()]);
  assert.deepEqual(p.subscriptions, []);
  assert.deepEqual([s.refreshTokens, s.accessTokens, s.servicePrincipals], [[], [], []]);
}

describe("Entra sign-in against the emulator", { timeout: 600_000 }, () => {
  let emu: Emulator;
  let cloud: Cloud;
  let tmp: string;
  before(async () => {
    emu = await emulator({ lifetimes: { deviceCodeInterval: 1 } });
    cloud = emulatorCloud(emu);
    tmp = mkdtempSync(join(tmpdir(), "azkeep-signin-"));
  });
  beforeEach(async () => {
    await emu.control.reset();
    await emu.control.setLifetimes({ deviceCodeInterval: 1 });
  });
  after(async () => {
    await emu?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const deviceCode = (extra: Partial<LoginRequest> = {}, user = ALICE.upn, mfa = false): LoginRequest => ({
    cloud,
    method: { kind: "device-code" },
    onDeviceCode: (p) => void emu.control.approveDeviceCode(p.userCode, user, { mfa }),
    ...extra,
  });

  it("device code: message and QR code on stderr, tenants discovered, az's warnings, default as az picks it", async () => {
    const { ctx, out } = testContext();
    const store = createMemoryStore();
    const result = await login(ctx, store, deviceCode());
    assert.ok(
      out.messages.some((m) => /enter the code \S+ to authenticate/.test(m)),
      out.messages.join("\n"),
    );
    assert.ok(
      out.messages.some((m) => /[▄▀█]/.test(m)),
      "QR code",
    );
    assert.deepEqual(ids(result.subscriptions), [DEV_SUB, PROD_SUB, LEGACY_SUB, FABRIKAM_SUB].sort());
    for (const s of result.subscriptions) {
      assert.equal(s.cloudName, "Emulator");
      assert.equal("environmentName" in s, false);
      assert.deepEqual(s.user, { name: ALICE.upn, type: "user" });
    }
    const dev = result.subscriptions.find((s) => s.id === DEV_SUB)!;
    assert.equal(dev.isDefault, true, "the first Enabled subscription is the default");
    assert.equal(dev.tenantId, CONTOSO);
    assert.equal(dev.homeTenantId, CONTOSO);
    assert.deepEqual(dev.managedByTenants, [{ tenantId: "22222222-2222-2222-2222-222222222222" }]);
    assert.equal(dev.tenantDefaultDomain, "contoso.onmicrosoft.com");
    const w = out.warnings.join("\n");
    assert.match(w, /The following tenants require Multi-Factor Authentication \(MFA\)/);
    assert.match(w, new RegExp(`${WOODGROVE} .*azkeep login --tenant ${WOODGROVE}`));
    assert.match(
      w,
      /The following tenants don't contain accessible subscriptions\. Use 'azkeep login --allow-no-subscriptions'/,
    );
    assert.match(w, new RegExp(TAILSPIN));
    const secrets = await store.readSecrets();
    assert.equal(secrets.refreshTokens.length, 1);
    assert.equal(secrets.refreshTokens[0]!.username, ALICE.upn);
    assert.match(
      secrets.refreshTokens[0]!.homeAccountId,
      /^[0-9a-f-]+\.11111111-1111-1111-1111-111111111111$/,
    );
    assert.ok(secrets.accessTokens.length >= 2, "an ARM token per tenant is cached");
    // what a later get-access-token will use: the stored refresh token works for another resource and tenant
    const rt = secrets.refreshTokens[0]!;
    const graph = await acquireWithRefreshToken(ctx, {
      cloud,
      tenant: "22222222-2222-2222-2222-222222222222",
      clientId: rt.clientId,
      refreshToken: rt.secret,
      scopes: ["https://graph.microsoft.com//.default"],
    });
    assert.equal(graph.tenantId, "22222222-2222-2222-2222-222222222222");
  });

  it("--allow-no-subscriptions: tenant-level account for the tenant without subscriptions", async () => {
    const { ctx } = testContext();
    const result = await login(ctx, createMemoryStore(), deviceCode({ allowNoSubscriptions: true }));
    const t = result.subscriptions.find((s) => s.id === TAILSPIN);
    assert.ok(t, JSON.stringify(result.subscriptions));
    assert.equal(t.name, "N/A(tenant level account)");
    assert.equal(t.tenantId, TAILSPIN);
  });

  it("--tenant of the MFA tenant: signed in with MFA, only that tenant's subscriptions", async () => {
    const { ctx, out } = testContext();
    const result = await login(
      ctx,
      createMemoryStore(),
      deviceCode({ tenant: "woodgrove.onmicrosoft.com" }, ALICE.upn, true),
    );
    assert.deepEqual(ids(result.subscriptions), [WOODGROVE_SUB]);
    assert.equal(result.subscriptions[0]!.tenantId, WOODGROVE);
    assert.equal(out.warnings.length, 0, out.warnings.join("\n"));
  });

  it("username and password (ROPC): warns that it is discouraged", async () => {
    const { ctx, out } = testContext();
    const store = createMemoryStore();
    const result = await login(ctx, store, {
      cloud,
      method: { kind: "password", username: ALICE.upn, password: ALICE.password },
    });
    assert.ok(result.subscriptions.length >= 3);
    assert.ok(out.warnings.some((w) => /discouraged/.test(w)));
  });

  it("service principal with a secret: /subscriptions only, secret sealed in the store", async () => {
    const { ctx } = testContext();
    const store = createMemoryStore();
    const result = await login(ctx, store, {
      cloud,
      tenant: CONTOSO,
      method: {
        kind: "service-principal",
        clientId: SP.clientId,
        credential: { kind: "secret", secret: SP.secret },
      },
    });
    assert.deepEqual(ids(result.subscriptions), [DEV_SUB]);
    assert.deepEqual(result.subscriptions[0]!.user, { name: SP.clientId, type: "servicePrincipal" });
    assert.equal(
      await emu.control.countRequests({ endpoint: "tenants" }),
      0,
      "no /tenants for a service principal",
    );
    const s = await store.readSecrets();
    assert.deepEqual(s.servicePrincipals, [
      {
        clientId: SP.clientId,
        tenantId: CONTOSO,
        cloud: "Emulator",
        credential: { kind: "secret", secret: SP.secret },
      },
    ]);
  });

  it("service principal with a certificate (x5t assertion); with x5c too", async () => {
    const { ctx } = testContext();
    const pem = `${DEFAULT_SP_KEY_PEM}\n${DEFAULT_SP_CERT_PEM}`;
    for (const sendX5c of [false, true]) {
      const result = await login(ctx, createMemoryStore(), {
        cloud,
        tenant: "contoso.onmicrosoft.com",
        method: {
          kind: "service-principal",
          clientId: SP.clientId,
          credential: { kind: "certificate", certificatePem: pem, ...(sendX5c ? { sendX5c } : {}) },
        },
      });
      assert.deepEqual(ids(result.subscriptions), [DEV_SUB]);
      assert.equal(result.subscriptions[0]!.tenantId, CONTOSO, "a domain resolves to the tenant id");
    }
  });

  it("service principal with a federated token file: re-read at every request", async () => {
    const { ctx } = testContext();
    const file = join(tmp, "federated-token");
    writeFileSync(file, await mintFederatedToken());
    const store = createMemoryStore();
    await login(ctx, store, {
      cloud,
      tenant: CONTOSO,
      method: {
        kind: "service-principal",
        clientId: SP.clientId,
        credential: { kind: "federated-file", path: file },
      },
    });
    const sp = (await store.readSecrets()).servicePrincipals[0]!;
    assert.deepEqual(
      sp.credential,
      { kind: "federated-file", path: file },
      "the path is kept, not the token",
    );
    // rotate the file: the next request reads the new token; a damaged file is one clear error
    writeFileSync(file, await mintFederatedToken());
    const t = await acquireForServicePrincipal(ctx, {
      cloud,
      tenant: CONTOSO,
      clientId: SP.clientId,
      credential: sp.credential,
      scopes: ["https://graph.microsoft.com/.default"],
    });
    assert.ok(t.accessToken);
    writeFileSync(file, "not a token\n");
    await assert.rejects(
      acquireForServicePrincipal(ctx, {
        cloud,
        tenant: CONTOSO,
        clientId: SP.clientId,
        credential: sp.credential,
        scopes: ["https://graph.microsoft.com/.default"],
      }),
      (e: Error & { code?: string }) => e.code === "bad_input" && /does not hold a JWT/.test(e.message),
    );
  });

  it("service principal with a federated token given directly", async () => {
    const { ctx } = testContext();
    const result = await login(ctx, createMemoryStore(), {
      cloud,
      tenant: CONTOSO,
      method: {
        kind: "service-principal",
        clientId: SP.clientId,
        credential: { kind: "federated-token", token: await mintFederatedToken() },
      },
    });
    assert.deepEqual(ids(result.subscriptions), [DEV_SUB]);
  });

  it("managed identity through IMDS (system-assigned) and App Service (user-assigned by client, object and resource id)", async () => {
    const imds = testContext({
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: emu.managedIdentityEnv.AZURE_POD_IDENTITY_AUTHORITY_HOST },
    });
    const store = createMemoryStore();
    const sys = await login(imds.ctx, store, { cloud, method: { kind: "identity" } });
    assert.deepEqual(sys.subscriptions[0]!.user, {
      name: "systemAssignedIdentity",
      type: "servicePrincipal",
      assignedIdentityInfo: "MSI",
    });
    assert.equal(sys.subscriptions[0]!.tenantId, CONTOSO);
    assert.ok((await emu.control.countRequests({ endpoint: "imds" })) >= 1);
    const appService = testContext({
      env: {
        IDENTITY_ENDPOINT: emu.managedIdentityEnv.IDENTITY_ENDPOINT,
        IDENTITY_HEADER: emu.managedIdentityEnv.IDENTITY_HEADER,
      },
    });
    for (const [sel, info] of [
      [{ clientId: MI_USER.clientId }, `MSIClient-${MI_USER.clientId}`],
      [{ objectId: MI_USER.objectId }, `MSIObject-${MI_USER.objectId}`],
      [{ resourceId: MI_USER.resourceId }, `MSIResource-${MI_USER.resourceId}`],
    ] as const) {
      const r = await login(appService.ctx, createMemoryStore(), {
        cloud,
        method: { kind: "identity", ...sel },
      });
      assert.deepEqual(r.subscriptions[0]!.user, {
        name: "userAssignedIdentity",
        type: "servicePrincipal",
        assignedIdentityInfo: info,
      });
    }
    void MI_SYSTEM;
  });

  it("two identities side by side: a service principal does not erase the user's sign-in; logout removes one", async () => {
    const { ctx } = testContext();
    const store = createMemoryStore();
    await login(ctx, store, {
      cloud,
      method: { kind: "password", username: ALICE.upn, password: ALICE.password },
    });
    await login(ctx, store, {
      cloud,
      tenant: CONTOSO,
      method: {
        kind: "service-principal",
        clientId: SP.clientId,
        credential: { kind: "secret", secret: SP.secret },
      },
    });
    let profile = await store.readProfile();
    const dev = profile.subscriptions.filter((e) => e.id === DEV_SUB);
    assert.deepEqual(
      dev.map((e) => e.user.name).sort(),
      [ALICE.upn, SP.clientId].sort(),
      "both identities keep Contoso Dev",
    );
    assert.equal(profile.subscriptions.filter((e) => e.isDefault).length, 1);
    assert.equal(
      showAccount(profile.subscriptions, { activeCloud: "Emulator" }).user.name,
      SP.clientId,
      "the newest sign-in is current",
    );
    // account set picks the current identity; --username picks another
    const picked = await setAccount(store, {
      subscription: "contoso dev",
      activeCloud: "Emulator",
      username: ALICE.upn,
    });
    assert.equal(picked.user.name, ALICE.upn);
    profile = await store.readProfile();
    assert.equal(showAccount(profile.subscriptions, { activeCloud: "Emulator" }).user.name, ALICE.upn);
    // list hides the disabled subscription with az's warning
    const { ctx: c2, out } = testContext();
    const listed = listAccounts(c2, profile.subscriptions, { activeCloud: "Emulator" });
    assert.ok(!listed.some((e) => e.id === LEGACY_SUB));
    assert.ok(out.warnings.some((w) => /don't have 'Enabled' state/.test(w)));
    // logout of the service principal removes its entries and its secret, the user's stay
    await logout(ctx, store, { username: SP.clientId, activeCloud: "Emulator" });
    profile = await store.readProfile();
    const secrets = await store.readSecrets();
    assert.ok(profile.subscriptions.every((e) => e.user.name === ALICE.upn));
    assert.deepEqual(secrets.servicePrincipals, []);
    assert.ok(secrets.accessTokens.every((a) => a.principal !== SP.clientId));
    assert.equal(secrets.refreshTokens.length, 1);
    // logout without --username: the current account's user (alice); no new default is chosen
    await logout(ctx, store, { activeCloud: "Emulator" });
    await assertNothingStored(store);
    assert.throws(
      () => showAccount([], { activeCloud: "Emulator" }),
      /Please run 'azkeep login' to setup account/,
    );
  });

  it("account list --refresh: discovery again for every identity without a person; the chosen default stays", async () => {
    const { ctx } = testContext();
    const store = createMemoryStore();
    await login(ctx, store, {
      cloud,
      method: { kind: "password", username: ALICE.upn, password: ALICE.password },
    });
    await login(ctx, store, {
      cloud,
      tenant: CONTOSO,
      method: {
        kind: "service-principal",
        clientId: SP.clientId,
        credential: { kind: "secret", secret: SP.secret },
      },
    });
    await setAccount(store, { subscription: PROD_SUB, activeCloud: "Emulator" });
    const before = (await store.readProfile()).subscriptions.map((e) => `${e.id}/${e.user.name}`).sort();
    await emu.control.clearRequests();
    await refreshAccounts(ctx, store, cloud);
    const profile = await store.readProfile();
    assert.deepEqual(profile.subscriptions.map((e) => `${e.id}/${e.user.name}`).sort(), before);
    assert.equal(showAccount(profile.subscriptions, { activeCloud: "Emulator" }).id, PROD_SUB);
    assert.ok(
      (await emu.control.countRequests({ endpoint: "tenants" })) >= 1,
      "the user's tenants were listed again",
    );
    assert.equal(await emu.control.countRequests({ endpoint: "devicecode" }), 0, "no person needed");
  });

  it("a revoked sign-in: invalid_grant becomes auth_required with the exact login command", async () => {
    const { ctx } = testContext();
    const store = createMemoryStore();
    await login(ctx, store, {
      cloud,
      method: { kind: "password", username: ALICE.upn, password: ALICE.password },
    });
    const rt = (await store.readSecrets()).refreshTokens[0]!;
    await emu.control.revokeRefreshTokens(ALICE.upn);
    await assert.rejects(
      acquireWithRefreshToken(ctx, {
        cloud,
        tenant: CONTOSO,
        clientId: rt.clientId,
        refreshToken: rt.secret,
        scopes: ["https://management.core.windows.net//.default"],
      }),
      (e: Error & { code?: string; hint?: string; aadsts?: number }) =>
        e.code === "auth_required" &&
        e.aadsts === 50173 &&
        (e.hint ?? "").includes(
          `azkeep login --tenant ${CONTOSO} --scope https://management.core.windows.net//.default`,
        ),
    );
  });

  describe("bad input: one clear error, nothing stored", () => {
    const cases: [string, () => LoginRequest, (e: Error & { code?: string; hint?: string }) => boolean][] = [
      [
        "wrong client secret",
        () => ({
          cloud,
          tenant: CONTOSO,
          method: {
            kind: "service-principal",
            clientId: SP.clientId,
            credential: { kind: "secret", secret: "wrong" },
          },
        }),
        (e) =>
          e.code === "auth_failed" && /AADSTS7000215/.test(e.message) && /--certificate/.test(e.hint ?? ""),
      ],
      [
        "unknown tenant",
        () => ({
          cloud,
          tenant: "nosuch.onmicrosoft.com",
          method: {
            kind: "service-principal",
            clientId: SP.clientId,
            credential: { kind: "secret", secret: SP.secret },
          },
        }),
        (e) => e.code === "auth_failed" && /AADSTS90002/.test(e.message) && /--tenant/.test(e.hint ?? ""),
      ],
      [
        "unknown application",
        () => ({
          cloud,
          tenant: CONTOSO,
          method: {
            kind: "service-principal",
            clientId: "00000000-0000-4000-8000-000000000bad",
            credential: { kind: "secret", secret: "x" },
          },
        }),
        (e) => e.code === "auth_failed" && /AADSTS700016/.test(e.message),
      ],
      [
        "wrong password",
        () => ({ cloud, method: { kind: "password", username: ALICE.upn, password: "nope" } }),
        (e) => e.code === "auth_failed" && /AADSTS50126/.test(e.message),
      ],
      [
        "malformed certificate",
        () => ({
          cloud,
          tenant: CONTOSO,
          method: {
            kind: "service-principal",
            clientId: SP.clientId,
            credential: { kind: "certificate", certificatePem: DEFAULT_SP_CERT_PEM },
          },
        }),
        (e) => e.code === "bad_input" && /has no private key/.test(e.message),
      ],
      [
        "tenant that is not a tenant",
        () => ({ cloud, tenant: "not a tenant!", method: { kind: "device-code" } }),
        (e) => e.code === "usage",
      ],
      [
        "service principal without a tenant",
        () => ({
          cloud,
          method: {
            kind: "service-principal",
            clientId: SP.clientId,
            credential: { kind: "secret", secret: SP.secret },
          },
        }),
        (e) => e.code === "usage" && /needs --tenant/.test(e.message),
      ],
      [
        "device code declined",
        () => ({
          cloud,
          method: { kind: "device-code" },
          onDeviceCode: (p) => void emu.control.denyDeviceCode(p.userCode),
        }),
        (e) => e.code === "cancelled" && /declined/.test(e.message),
      ],
    ];
    for (const [name, req, check] of cases) {
      it(name, async () => {
        const { ctx } = testContext();
        const store = createMemoryStore();
        await assert.rejects(login(ctx, store, req()), (e: Error & { code?: string; hint?: string }) => {
          assert.ok(check(e), `${e.code}: ${e.message} / ${e.hint}`);
          assert.doesNotMatch(`${e.message} ${e.hint}`, /azkeep-ci-secret-value|alice-Passw0rd/);
          return true;
        });
        await assertNothingStored(store);
      });
    }

    it("the identity provider is down", async () => {
      const port = await freePort();
      const down: Cloud = {
        ...cloud,
        endpoints: { ...cloud.endpoints, activeDirectory: `http://127.0.0.1:${port}` },
      };
      const { ctx } = testContext();
      const store = createMemoryStore();
      await assert.rejects(
        login(ctx, store, {
          cloud: down,
          tenant: CONTOSO,
          method: {
            kind: "service-principal",
            clientId: SP.clientId,
            credential: { kind: "secret", secret: SP.secret },
          },
        }),
        (e: Error & { code?: string }) => e.code === "network" && /Cannot reach 127\.0\.0\.1/.test(e.message),
      );
      await assertNothingStored(store);
    });

    it("the identity provider answers garbage, or 503 with Retry-After", async () => {
      const server = createServer((req, res) => {
        if (req.url?.includes("busy")) {
          res.writeHead(503, { "retry-after": "7" });
          res.end("busy");
        } else {
          res.writeHead(200, { "content-type": "text/html" });
          res.end("<html>captive portal</html>");
        }
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      try {
        const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
        const { ctx } = testContext();
        const store = createMemoryStore();
        const req = (ad: string): LoginRequest => ({
          cloud: { ...cloud, endpoints: { ...cloud.endpoints, activeDirectory: ad } },
          tenant: CONTOSO,
          method: {
            kind: "service-principal",
            clientId: SP.clientId,
            credential: { kind: "secret", secret: SP.secret },
          },
        });
        await assert.rejects(
          login(ctx, store, req(base)),
          (e: Error & { code?: string }) => e.code === "network" && /not a JSON object/.test(e.message),
        );
        await assert.rejects(
          login(ctx, store, req(`${base}/busy`)),
          (e: Error & { code?: string; status?: number; retryAfterMs?: number }) =>
            e.code === "network" && e.status === 503 && e.retryAfterMs === 7000,
        );
        await assertNothingStored(store);
      } finally {
        server.close();
      }
    });

    it("ARM failing after a good sign-in stores nothing", async () => {
      await emu.control.injectFault({ endpoint: "subscriptions", type: "status", status: 500 });
      const { ctx } = testContext();
      const store = createMemoryStore();
      await assert.rejects(
        login(ctx, store, {
          cloud,
          tenant: CONTOSO,
          method: {
            kind: "service-principal",
            clientId: SP.clientId,
            credential: { kind: "secret", secret: SP.secret },
          },
        }),
        (e: Error & { code?: string }) => e.code === "network",
      );
      await assertNothingStored(store);
    });
  });
});
