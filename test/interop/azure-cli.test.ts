/**
 * The Azure CLI 2.45 from Debian, unmodified, signs in and gets tokens from the emulator.
 * It runs with the stock AzureCloud (login.microsoftonline.com, management.azure.com) and
 * reaches the emulator only through its CONNECT proxy, trusting nothing but the emulator's CA:
 * if the emulator were not faithful enough, az would fail here.
 *
 * One emulator and a few throwaway config folders serve the whole suite (each az call takes
 * 0.5–2 s). The tests in a describe run in order and build on each other.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import {
  DEFAULT_SP_CERT_PEM,
  DEFAULT_SP_KEY_PEM,
  startEmulator,
  type Emulator,
} from "../../src/emulator/index.js";
import { hasCommand, requireTool } from "../helpers/require-tool.js";
import { AZ_INSTALL, azConfigDir, azEnv } from "../helpers/az.js";
import { jwtClaims } from "../helpers/jwt.js";
import { AZ_CLI_CLIENT_ID } from "../helpers/seed.js";
import { SEEDED, start, type RunResult } from "./helpers.js";

interface Subscription {
  id: string;
  name: string;
  state: string;
  tenantId: string;
  homeTenantId?: string;
  isDefault: boolean;
  cloudName?: string;
  user: { name: string; type: string };
}

interface AccessToken {
  accessToken: string;
  expiresOn: string;
  subscription?: string;
  tenant: string;
  tokenType: string;
}

const ARM_AUDIENCE = "https://management.core.windows.net/";

describe("Azure CLI 2.45 through the emulator's proxy (stock AzureCloud)", { timeout: 600_000 }, () => {
  let root: string;
  let emu: Emulator;

  before(async () => {
    if (!hasCommand("az")) return;
    root = mkdtempSync(join(tmpdir(), "azkeep-interop-az-"));
    emu = await startEmulator({ dataDir: join(root, "emulator") });
    // Device-code polling every second instead of every five keeps the suite short.
    await emu.control.setLifetimes({ deviceCodeInterval: 1 });
  });
  after(async () => {
    await emu?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function az(configDir: string, args: string[], timeoutMs = 120_000): Promise<RunResult> {
    return start("az", args, azEnv(root, configDir, emu.urls.proxy!, emu.caCertPath!), timeoutMs).done;
  }

  async function azJson<T>(configDir: string, args: string[]): Promise<{ value: T; stderr: string }> {
    const r = await az(configDir, [...args, "-o", "json"]);
    assert.equal(r.code, 0, `az ${args.join(" ")} failed:\n${r.stderr}`);
    return { value: JSON.parse(r.stdout) as T, stderr: r.stderr };
  }

  function ready(t: TestContext): boolean {
    return requireTool(t, "az", AZ_INSTALL);
  }

  /** Every request the emulator saw came in under a real Azure host name, through the proxy. */
  async function assertOnlyAzureHosts(): Promise<void> {
    const { requests } = await emu.control.requests();
    const hosts = new Set(requests.map((r) => r.host.toLowerCase()));
    for (const h of hosts)
      assert.match(h, /^(login\.microsoftonline\.com|management\.azure\.com)$/, `host ${h}`);
  }

  describe("service principal", () => {
    let dir: string;

    it("az login --service-principal with a secret lists the SP's subscription", async (t) => {
      if (!ready(t)) return;
      dir = azConfigDir(root, "sp-secret");
      await emu.control.clearRequests();
      const { value } = await azJson<Subscription[]>(dir, [
        "login",
        "--service-principal",
        "-u",
        SEEDED.sp.clientId,
        "-p",
        SEEDED.sp.secret,
        "--tenant",
        SEEDED.contoso,
      ]);
      assert.deepEqual(
        value.map((s) => [s.id, s.name, s.tenantId, s.user.type, s.user.name]),
        [[SEEDED.subs.dev, "Contoso Dev", SEEDED.contoso, "servicePrincipal", SEEDED.sp.clientId]],
      );
      assert.equal(value[0]?.isDefault, true);
      const grants = await emu.control.requests({ endpoint: "token", clientId: SEEDED.sp.clientId });
      assert.ok(grants.requests.some((r) => r.grantType === "client_credentials" && r.status === 200));
      await assertOnlyAzureHosts();
    });

    it("az account get-access-token returns the SP's ARM token", async (t) => {
      if (!ready(t)) return;
      const { value } = await azJson<AccessToken>(dir, ["account", "get-access-token"]);
      assert.equal(value.tokenType, "Bearer");
      assert.equal(value.subscription, SEEDED.subs.dev);
      assert.equal(value.tenant, SEEDED.contoso);
      assert.match(value.expiresOn, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000$/);
      const c = jwtClaims(value.accessToken);
      assert.equal(c.aud, ARM_AUDIENCE);
      assert.equal(c.appid, SEEDED.sp.clientId);
      assert.equal(c.tid, SEEDED.contoso);
      assert.equal(c.iss, `https://sts.windows.net/${SEEDED.contoso}/`);
    });

    it("a wrong secret fails with Entra's AADSTS7000215", async (t) => {
      if (!ready(t)) return;
      const r = await az(azConfigDir(root, "sp-wrong"), [
        "login",
        "--service-principal",
        "-u",
        SEEDED.sp.clientId,
        "-p",
        "not-the-secret",
        "--tenant",
        SEEDED.contoso,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /AADSTS7000215/);
      assert.doesNotMatch(r.stderr, /not-the-secret/);
    });

    it("az login --service-principal with a certificate (PEM path in -p)", async (t) => {
      if (!ready(t)) return;
      const certDir = azConfigDir(root, "sp-cert");
      const pemPath = join(root, "sp-cert.pem");
      writeFileSync(pemPath, `${DEFAULT_SP_KEY_PEM.trim()}\n${DEFAULT_SP_CERT_PEM.trim()}\n`, {
        mode: 0o600,
      });
      await emu.control.clearRequests();
      const { value } = await azJson<Subscription[]>(certDir, [
        "login",
        "--service-principal",
        "-u",
        SEEDED.sp.clientId,
        "-p",
        pemPath,
        "--tenant",
        "contoso.onmicrosoft.com",
      ]);
      assert.deepEqual(
        value.map((s) => s.id),
        [SEEDED.subs.dev],
      );
      assert.equal(value[0]?.tenantId, SEEDED.contoso, "the domain was resolved to the tenant id");
      const tok = await azJson<AccessToken>(certDir, [
        "account",
        "get-access-token",
        "--resource",
        "https://graph.microsoft.com/",
      ]);
      const c = jwtClaims(tok.value.accessToken);
      assert.equal(c.aud, "https://graph.microsoft.com/");
      assert.equal(c.appid, SEEDED.sp.clientId);
      assert.deepEqual(c.roles, ["Application.Read.All"]);
      // It was the certificate (a client assertion), not a secret, that signed in.
      const { requests } = await emu.control.requests({ endpoint: "token", grantType: "client_credentials" });
      assert.ok(requests.length >= 1 && requests.every((r) => r.status === 200));
      const config = readFileSync(join(certDir, "service_principal_entries.json"), "utf8");
      assert.match(config, /"certificate"/);
      assert.doesNotMatch(config, /client_secret|azkeep-ci-secret-value/);
    });
  });

  describe("user", () => {
    let dir: string;

    it("az login -u … -p … lists the subscriptions and reports MFA and empty tenants on stderr", async (t) => {
      if (!ready(t)) return;
      dir = azConfigDir(root, "user");
      const { value, stderr } = await azJson<Subscription[]>(dir, [
        "login",
        "-u",
        SEEDED.alice.upn,
        "-p",
        SEEDED.alice.password,
      ]);
      const byId = new Map(value.map((s) => [s.id, s]));
      assert.deepEqual(
        [...byId.keys()].sort(),
        [SEEDED.subs.dev, SEEDED.subs.prod, SEEDED.subs.legacy, SEEDED.subs.fabrikam].sort(),
      );
      assert.equal(byId.get(SEEDED.subs.legacy)?.state, "Disabled");
      assert.equal(byId.get(SEEDED.subs.fabrikam)?.tenantId, SEEDED.fabrikam);
      assert.equal(byId.get(SEEDED.subs.dev)?.user.name, SEEDED.alice.upn);
      assert.equal(byId.get(SEEDED.subs.dev)?.user.type, "user");
      assert.equal(value.filter((s) => s.isDefault).length, 1);
      // az 2.45's own words (azure-cli _profile.py), with the emulator's tenants in them.
      assert.match(
        stderr,
        /The following tenants require Multi-Factor Authentication \(MFA\)\. Use 'az login --tenant TENANT_ID' to explicitly login to a tenant\.\nWARNING: 33333333-3333-3333-3333-333333333333 'Woodgrove \(MFA required\)'/,
      );
      assert.match(
        stderr,
        /The following tenants don't contain accessible subscriptions\. Use 'az login --allow-no-subscriptions' to have tenant level access\.\nWARNING: 44444444-4444-4444-4444-444444444444 'Tailspin \(no subscriptions\)'/,
      );
      assert.doesNotMatch(stderr, /alice-Passw0rd!/);
      const ropc = await emu.control.requests({ endpoint: "token", grantType: "password" });
      assert.equal(ropc.requests.at(-1)?.status, 200);
      await assertOnlyAzureHosts();
    });

    it("az account list shows the enabled subscriptions; --all adds the disabled one", async (t) => {
      if (!ready(t)) return;
      const enabled = await azJson<Subscription[]>(dir, ["account", "list"]);
      assert.deepEqual(enabled.value.map((s) => s.name).sort(), [
        "Contoso Dev",
        "Contoso Prod",
        "Fabrikam Shared",
      ]);
      assert.match(enabled.stderr, /A few accounts are skipped as they don't have 'Enabled' state/);
      const all = await azJson<Subscription[]>(dir, ["account", "list", "--all"]);
      assert.ok(all.value.some((s) => s.name === "Contoso Legacy (disabled)" && s.state === "Disabled"));
    });

    it("az account get-access-token answers from az's cache without asking the emulator", async (t) => {
      if (!ready(t)) return;
      await emu.control.clearRequests();
      const { value } = await azJson<AccessToken>(dir, ["account", "get-access-token"]);
      assert.equal(await emu.control.countRequests({ endpoint: "token" }), 0);
      const c = jwtClaims(value.accessToken);
      assert.equal(c.aud, ARM_AUDIENCE);
      assert.equal(c.upn, SEEDED.alice.upn);
      assert.equal(c.oid, SEEDED.alice.oid);
      assert.equal(c.appid, AZ_CLI_CLIENT_ID);
      assert.equal(value.tenant, SEEDED.contoso);
      assert.deepEqual(c.xms_cc, ["CP1"], "az asks for the CP1 capability");
    });

    it("after the cached token expires, az refreshes it with the refresh token (one request)", async (t) => {
      if (!ready(t)) return;
      const before = await azJson<AccessToken>(dir, ["account", "get-access-token"]);
      // Age az's cached access tokens as the passing hour would (msal_token_cache.json is
      // plain JSON in az 2.45 on Linux): 60 s left is inside MSAL's 5-minute refresh margin.
      expireCachedAccessTokens(join(dir, "msal_token_cache.json"), 60);
      await emu.control.clearRequests();
      const after = await azJson<AccessToken>(dir, ["account", "get-access-token"]);
      const { requests } = await emu.control.requests({ endpoint: "token" });
      assert.deepEqual(
        requests.map((r) => [r.grantType, r.status]),
        [["refresh_token", 200]],
      );
      assert.notEqual(after.value.accessToken, before.value.accessToken);
      assert.equal(jwtClaims(after.value.accessToken).aud, ARM_AUDIENCE);
      assert.ok(Date.parse(`${after.value.expiresOn.replace(" ", "T")}Z`) > Date.now() + 30 * 60_000);
    });

    it("az account get-access-token --resource gets another audience from the same refresh token", async (t) => {
      if (!ready(t)) return;
      await emu.control.clearRequests();
      const { value } = await azJson<AccessToken>(dir, [
        "account",
        "get-access-token",
        "--resource",
        "https://vault.azure.net",
      ]);
      assert.equal(jwtClaims(value.accessToken).aud, "https://vault.azure.net");
      const { requests } = await emu.control.requests({ endpoint: "token" });
      assert.deepEqual(
        requests.map((r) => r.grantType),
        ["refresh_token"],
      );
      const graph = await azJson<AccessToken>(dir, [
        "account",
        "get-access-token",
        "--resource-type",
        "ms-graph",
      ]);
      assert.equal(jwtClaims(graph.value.accessToken).aud, "https://graph.microsoft.com/");
    });

    it("az account get-access-token --tenant gets a token in the second tenant (guest)", async (t) => {
      if (!ready(t)) return;
      const { value } = await azJson<AccessToken>(dir, [
        "account",
        "get-access-token",
        "--tenant",
        SEEDED.fabrikam,
      ]);
      assert.equal(value.tenant, SEEDED.fabrikam);
      assert.equal(value.subscription, undefined, "az omits subscription with --tenant");
      const c = jwtClaims(value.accessToken);
      assert.equal(c.tid, SEEDED.fabrikam);
      assert.equal(c.aud, ARM_AUDIENCE);
      assert.equal(c.upn ?? c.unique_name ?? c.preferred_username, SEEDED.alice.upn);
    });

    it("az group list lists the default subscription's resource groups (and another tenant's)", async (t) => {
      if (!ready(t)) return;
      const { value } = await azJson<{ name: string; location: string; id: string }[]>(dir, [
        "group",
        "list",
      ]);
      assert.deepEqual(value.map((g) => g.name).sort(), ["rg-dev-app", "rg-identity"]);
      assert.equal(
        value.find((g) => g.name === "rg-dev-app")?.id,
        `/subscriptions/${SEEDED.subs.dev}/resourceGroups/rg-dev-app`,
      );
      const shared = await azJson<{ name: string }[]>(dir, [
        "group",
        "list",
        "--subscription",
        "Fabrikam Shared",
      ]);
      assert.deepEqual(
        shared.value.map((g) => g.name),
        ["rg-shared"],
      );
      await assertOnlyAzureHosts();
    });

    it("an expired refresh token gives az's re-authentication message (AADSTS700082)", async (t) => {
      if (!ready(t)) return;
      await emu.control.expireRefreshTokens(SEEDED.alice.upn);
      expireCachedAccessTokens(join(dir, "msal_token_cache.json"), 60);
      const r = await az(dir, ["account", "get-access-token"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /AADSTS700082/);
      assert.match(r.stderr, /az login/);
    });

    it("az login --tenant of the MFA tenant fails with AADSTS50076 (password alone is not enough)", async (t) => {
      if (!ready(t)) return;
      const r = await az(azConfigDir(root, "user-mfa"), [
        "login",
        "-u",
        SEEDED.alice.upn,
        "-p",
        SEEDED.alice.password,
        "--tenant",
        SEEDED.woodgrove,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /AADSTS50076/);
    });
  });

  describe("device code", () => {
    it("az login --use-device-code, approved through the control API while az polls", async (t) => {
      if (!ready(t)) return;
      const dir = azConfigDir(root, "device");
      await emu.control.clearRequests();
      const run = start(
        "az",
        ["login", "--use-device-code", "-o", "json"],
        azEnv(root, dir, emu.urls.proxy!, emu.caCertPath!),
      );
      try {
        // az prints the server's message on stderr, as it does against Entra.
        const m = await run.waitFor(
          /To sign in, use a web browser to open the page (\S+) and enter the code (\S+) to authenticate/,
        );
        const code = await emu.control.waitForDeviceCode({ clientId: AZ_CLI_CLIENT_ID });
        assert.equal(m[2], code.userCode);
        // Let az poll a few times (authorization_pending) before approving.
        await waitUntil(
          async () =>
            (await emu.control.countRequests({
              endpoint: "token",
              grantType: "urn:ietf:params:oauth:grant-type:device_code",
            })) >= 2,
        );
        await emu.control.approveDeviceCode(code.userCode, SEEDED.alice.upn);
        const r = await run.done;
        assert.equal(r.code, 0, r.stderr);
        const subs = JSON.parse(r.stdout) as Subscription[];
        assert.ok(subs.some((s) => s.id === SEEDED.subs.dev && s.user.name === SEEDED.alice.upn));
        const polls = await emu.control.requests({
          endpoint: "token",
          grantType: "urn:ietf:params:oauth:grant-type:device_code",
        });
        assert.ok(
          polls.requests.filter((p) => p.status === 400).length >= 2,
          "authorization_pending while waiting",
        );
        assert.equal(polls.requests.at(-1)?.status, 200);
        const tok = await azJson<AccessToken>(dir, ["account", "get-access-token"]);
        assert.equal(jwtClaims(tok.value.accessToken).upn, SEEDED.alice.upn);
      } finally {
        run.child.kill("SIGKILL");
      }
    });
  });
});

/** Sets `expires_on` of every cached access token to `secondsLeft` from now. */
function expireCachedAccessTokens(cachePath: string, secondsLeft: number): void {
  const cache = JSON.parse(readFileSync(cachePath, "utf8")) as {
    AccessToken?: Record<string, Record<string, string>>;
  };
  const at = Math.floor(Date.now() / 1000) + secondsLeft;
  for (const entry of Object.values(cache.AccessToken ?? {})) {
    entry.expires_on = String(at);
    if ("extended_expires_on" in entry) entry.extended_expires_on = String(at);
    delete entry.refresh_on;
  }
  writeFileSync(cachePath, JSON.stringify(cache));
}

async function waitUntil(cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 200));
  }
}
