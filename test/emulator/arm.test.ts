import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import type { Emulator } from "../../src/emulator/index.js";
import {
  ALICE,
  AZ,
  BOB,
  CONTOSO,
  FABRIKAM,
  SP,
  USER_SCOPE,
  claims,
  emulator,
  get,
  ropc,
  token,
} from "./helpers.js";

const DEV = "c0ffee00-0000-4000-8000-000000000001";
const LEGACY = "c0ffee00-0000-4000-8000-000000000003";
const SHARED = "c0ffee00-0000-4000-8000-000000000004";

async function arm(
  emu: Emulator,
  method: string,
  path: string,
  bearer?: string,
  body?: unknown,
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(`${emu.urls.http}${path}`, {
    method,
    headers: {
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

async function userToken(emu: Emulator, tenant: string, user = ALICE, cp1 = false): Promise<string> {
  const r = await ropc(emu, "organizations", user);
  const refreshed = await token(emu, tenant, {
    grant_type: "refresh_token",
    client_id: AZ,
    refresh_token: String(r.body.refresh_token),
    scope: USER_SCOPE,
    ...(cp1 ? { claims: JSON.stringify({ access_token: { xms_cc: { values: ["CP1"] } } }) } : {}),
  });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  return String(refreshed.body.access_token);
}

describe("emulator: ARM", () => {
  let emu: Emulator;
  before(async () => (emu = await emulator()));
  after(() => emu.close());

  it("lists tenants in the shapes of 2019-11-01 and 2022-12-01", async () => {
    const at = await userToken(emu, CONTOSO);
    const old = await arm(emu, "GET", "/tenants?api-version=2019-11-01", at);
    assert.equal(old.status, 200);
    const v = old.body.value as Record<string, unknown>[];
    assert.deepEqual(
      v.map((t) => t.tenantId),
      [CONTOSO, FABRIKAM, "33333333-3333-3333-3333-333333333333", "44444444-4444-4444-4444-444444444444"],
    );
    assert.equal(v[0]!.displayName, "Contoso");
    assert.equal(v[0]!.defaultDomain, undefined);
    const fresh = await arm(emu, "GET", "/tenants?api-version=2022-12-01", at);
    assert.equal(
      (fresh.body.value as Record<string, unknown>[])[0]!.defaultDomain,
      "contoso.onmicrosoft.com",
    );
  });

  it("lists the subscriptions visible from the token's tenant, disabled and Lighthouse ones included", async () => {
    const contoso = await arm(
      emu,
      "GET",
      "/subscriptions?api-version=2019-11-01",
      await userToken(emu, CONTOSO),
    );
    const subs = contoso.body.value as Record<string, unknown>[];
    assert.deepEqual(
      subs.map((s) => [s.displayName, s.state]),
      [
        ["Contoso Dev", "Enabled"],
        ["Contoso Prod", "Enabled"],
        ["Contoso Legacy (disabled)", "Disabled"],
      ],
    );
    assert.equal(subs[0]!.tenantId, CONTOSO);
    assert.deepEqual(subs[0]!.managedByTenants, [{ tenantId: FABRIKAM }]);
    const fabrikam = await arm(
      emu,
      "GET",
      "/subscriptions?api-version=2022-12-01",
      await userToken(emu, FABRIKAM),
    );
    assert.deepEqual(
      (fabrikam.body.value as Record<string, unknown>[]).map((s) => s.displayName),
      ["Contoso Dev", "Fabrikam Shared"],
    );
    const tailspin = await arm(
      emu,
      "GET",
      "/subscriptions?api-version=2019-11-01",
      await userToken(emu, "44444444-4444-4444-4444-444444444444"),
    );
    assert.deepEqual(tailspin.body.value, []);
    const bob = await arm(
      emu,
      "GET",
      "/subscriptions?api-version=2019-11-01",
      await userToken(emu, FABRIKAM, BOB as never),
    );
    assert.deepEqual(
      (bob.body.value as Record<string, unknown>[]).map((s) => s.subscriptionId),
      [SHARED],
    );
  });

  it("service principals see their subscriptions with an app token", async () => {
    const r = await token(emu, CONTOSO, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_secret: SP.secret,
      scope: "https://management.azure.com/.default",
    });
    const list = await arm(emu, "GET", "/subscriptions?api-version=2019-11-01", String(r.body.access_token));
    assert.deepEqual(
      (list.body.value as Record<string, unknown>[]).map((s) => s.subscriptionId),
      [DEV],
    );
  });

  it("verifies the bearer: missing, garbage, wrong audience, expired, wrong tenant, no access", async () => {
    const none = await arm(emu, "GET", "/subscriptions?api-version=2019-11-01");
    assert.equal(none.status, 401);
    assert.match(
      none.headers.get("www-authenticate")!,
      /^Bearer authorization_uri="https:\/\/login\.windows\.net\/", error="invalid_token"/,
    );
    assert.equal((none.body.error as Record<string, unknown>).code, "AuthenticationFailed");

    const garbage = await arm(
      emu,
      "GET",
      "/subscriptions?api-version=2019-11-01",
      "eyJhbGciOiJub25lIn0.e30.",
    );
    assert.equal((garbage.body.error as Record<string, unknown>).code, "InvalidAuthenticationToken");

    const graph = await token(emu, CONTOSO, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_secret: SP.secret,
      scope: "https://graph.microsoft.com/.default",
    });
    const aud = await arm(
      emu,
      "GET",
      "/subscriptions?api-version=2019-11-01",
      String(graph.body.access_token),
    );
    assert.equal((aud.body.error as Record<string, unknown>).code, "InvalidAuthenticationTokenAudience");

    // A token from another emulator instance (another signing key) is refused.
    let foreign: string;
    {
      // Disposed even when an assertion in between fails: no emulator outlives its test.
      await using other = await emulator();
      foreign = String((await ropc(other)).body.access_token);
    }
    const forged = await arm(emu, "GET", "/subscriptions?api-version=2019-11-01", foreign);
    assert.equal((forged.body.error as Record<string, unknown>).code, "InvalidAuthenticationToken");

    const fabrikamToken = await userToken(emu, FABRIKAM);
    const tenant = await arm(
      emu,
      "GET",
      `/subscriptions/c0ffee00-0000-4000-8000-000000000002/resourcegroups?api-version=2021-04-01`,
      fabrikamToken,
    );
    assert.equal(tenant.status, 401);
    assert.equal((tenant.body.error as Record<string, unknown>).code, "InvalidAuthenticationTokenTenant");
    assert.match(tenant.headers.get("www-authenticate")!, new RegExp(`login\\.windows\\.net/${CONTOSO}`));

    const bobToken = await userToken(emu, FABRIKAM, BOB as never);
    const forbidden = await arm(
      emu,
      "GET",
      `/subscriptions/${DEV}/resourcegroups?api-version=2021-04-01`,
      bobToken,
    );
    assert.equal(forbidden.status, 403);
    assert.equal((forbidden.body.error as Record<string, unknown>).code, "AuthorizationFailed");

    const at = await userToken(emu, CONTOSO);
    await emu.control.advanceClock(3601);
    const expired = await arm(emu, "GET", "/subscriptions?api-version=2019-11-01", at);
    assert.equal((expired.body.error as Record<string, unknown>).code, "ExpiredAuthenticationToken");
    await emu.control.reset();

    const noVersion = await arm(emu, "GET", "/subscriptions", at);
    assert.equal((noVersion.body.error as Record<string, unknown>).code, "MissingApiVersionParameter");
  });

  it("each cloud's ARM accepts its own audiences (China, US Government); the loopback address every cloud's", async () => {
    const sp = async (scope: string) => {
      const r = await token(emu, CONTOSO, {
        grant_type: "client_credentials",
        client_id: SP.clientId,
        client_secret: SP.secret,
        scope,
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return String(r.body.access_token);
    };
    /** GET /subscriptions as reached through the proxy by that host name (the Host header). */
    const at = (host: string | undefined, bearer: string) =>
      new Promise<{ status: number; code: unknown }>((resolve, reject) => {
        const u = new URL(emu.urls.http);
        const req = request(
          {
            host: u.hostname,
            port: u.port,
            path: "/subscriptions?api-version=2022-12-01",
            headers: { authorization: `Bearer ${bearer}`, ...(host ? { host } : {}) },
          },
          (res) => {
            let text = "";
            res.on("data", (d: Buffer) => (text += d.toString()));
            res.on("end", () =>
              resolve({
                status: res.statusCode ?? 0,
                code: (JSON.parse(text) as { error?: { code?: string } }).error?.code,
              }),
            );
          },
        );
        req.on("error", reject);
        req.end();
      });
    const china = await sp("https://management.core.chinacloudapi.cn//.default");
    const chinaArm = await sp("https://management.chinacloudapi.cn/.default");
    const gov = await sp("https://management.core.usgovcloudapi.net//.default");
    const govArm = await sp("https://management.usgovcloudapi.net/.default");
    const pub = await sp("https://management.core.windows.net//.default");
    assert.equal(claims(china).aud, "https://management.core.chinacloudapi.cn/");
    assert.equal(claims(govArm).aud, "https://management.usgovcloudapi.net");
    for (const t of [china, chinaArm, gov, govArm, pub]) assert.equal((await at(undefined, t)).status, 200);
    for (const t of [china, chinaArm]) assert.equal((await at("management.chinacloudapi.cn", t)).status, 200);
    for (const t of [gov, govArm]) assert.equal((await at("management.usgovcloudapi.net", t)).status, 200);
    assert.equal((await at("management.azure.com", pub)).status, 200);
    // Each cloud's ARM refuses the others' audiences, as the real ones do.
    for (const [host, t] of [
      ["management.chinacloudapi.cn", pub],
      ["management.usgovcloudapi.net", china],
      ["management.azure.com", gov],
    ] as const) {
      const r = await at(host, t);
      assert.deepEqual([r.status, r.code], [401, "InvalidAuthenticationTokenAudience"], host);
    }
  });

  it("resource groups: list, get, create, update, delete (LRO), disabled subscription is read-only", async () => {
    const at = await userToken(emu, CONTOSO);
    const base = `/subscriptions/${DEV}/resourcegroups`;
    const list = await arm(emu, "GET", `${base}?api-version=2021-04-01`, at);
    assert.deepEqual(
      (list.body.value as Record<string, unknown>[]).map((g) => g.name),
      ["rg-dev-app", "rg-identity"],
    );
    const got = await arm(
      emu,
      "GET",
      `/subscriptions/${DEV}/resourceGroups/RG-DEV-APP?api-version=2021-04-01`,
      at,
    );
    assert.equal(got.body.id, `/subscriptions/${DEV}/resourceGroups/rg-dev-app`);
    assert.deepEqual(got.body.properties, { provisioningState: "Succeeded" });

    const created = await arm(emu, "PUT", `${base}/rg-new?api-version=2021-04-01`, at, {
      location: "West Europe",
      tags: { a: "b" },
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.location, "westeurope");
    const updated = await arm(emu, "PUT", `${base}/rg-new?api-version=2021-04-01`, at, {
      location: "westeurope",
    });
    assert.equal(updated.status, 200);
    const noLocation = await arm(emu, "PUT", `${base}/rg-x?api-version=2021-04-01`, at, {});
    assert.equal((noLocation.body.error as Record<string, unknown>).code, "LocationRequired");
    const badJson = await fetch(`${emu.urls.http}${base}/rg-x?api-version=2021-04-01`, {
      method: "PUT",
      headers: { authorization: `Bearer ${at}`, "content-type": "application/json" },
      body: "{not json",
    });
    assert.equal(badJson.status, 400);

    const del = await arm(emu, "DELETE", `${base}/rg-new?api-version=2021-04-01`, at);
    assert.equal(del.status, 202);
    const poll = await fetch(del.headers.get("location")!, { headers: { authorization: `Bearer ${at}` } });
    assert.equal(poll.status, 200);
    const gone = await arm(emu, "GET", `${base}/rg-new?api-version=2021-04-01`, at);
    assert.equal((gone.body.error as Record<string, unknown>).code, "ResourceGroupNotFound");

    const readOnly = await arm(
      emu,
      "PUT",
      `/subscriptions/${LEGACY}/resourcegroups/rg?api-version=2021-04-01`,
      at,
      { location: "westeurope" },
    );
    assert.equal((readOnly.body.error as Record<string, unknown>).code, "ReadOnlyDisabledSubscription");
    const sub = await arm(emu, "GET", `/subscriptions/${LEGACY}?api-version=2022-12-01`, at);
    assert.equal(sub.body.state, "Disabled");
  });

  it("CAE: a claims challenge refuses older tokens until a new one is fetched", async () => {
    const at = await userToken(emu, CONTOSO, ALICE, true);
    assert.deepEqual(claims(at).xms_cc, ["CP1"]);
    await emu.control.requireClaimsChallenge({ principal: ALICE.upn });
    const r = await arm(emu, "GET", "/subscriptions?api-version=2019-11-01", at);
    assert.equal(r.status, 401);
    const h = r.headers.get("www-authenticate")!;
    assert.match(h, /error="insufficient_claims"/);
    const b64 = /claims="([^"]+)"/.exec(h)![1]!;
    const challenge = JSON.parse(Buffer.from(b64, "base64").toString()) as {
      access_token: { nbf: { essential: boolean; value: string } };
    };
    assert.equal(challenge.access_token.nbf.essential, true);
    // Bob is not affected.
    const bob = await arm(
      emu,
      "GET",
      "/subscriptions?api-version=2019-11-01",
      await userToken(emu, FABRIKAM, BOB as never),
    );
    assert.equal(bob.status, 200);
    const fresh = await userToken(emu, CONTOSO, ALICE, true);
    assert.equal((await arm(emu, "GET", "/subscriptions?api-version=2019-11-01", fresh)).status, 200);
    await emu.control.clearClaimsChallenges();
  });
});

describe("emulator: managed identity", () => {
  let emu: Emulator;
  before(async () => (emu = await emulator({ identityHeader: "test-identity-header" })));
  after(() => emu.close());

  it("IMDS needs Metadata: true and picks the system identity, or the one asked for", async () => {
    const url = `${emu.urls.http}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent("https://management.azure.com/")}`;
    const noHeader = await get(url);
    assert.equal(noHeader.status, 400);
    assert.equal(noHeader.body.error, "invalid_request");
    const sys = await get(url, { Metadata: "true" });
    assert.equal(sys.status, 200);
    assert.equal(sys.body.client_id, "3a3a3a3a-0000-4000-8000-00000000d001");
    assert.equal(typeof sys.body.expires_on, "string");
    assert.equal(claims(sys.body.access_token).aud, "https://management.azure.com/");
    const user = await get(`${url}&client_id=3a3a3a3a-0000-4000-8000-00000000d002`, { Metadata: "true" });
    assert.match(String(claims(user.body.access_token).xms_mirid), /userAssignedIdentities\/id-azkeep$/);
    const missing = await get(`${url}&client_id=00000000-0000-0000-0000-000000000000`, { Metadata: "true" });
    assert.equal(missing.status, 400);
    // The token works on ARM for a subscription the identity can see.
    const subs = await fetch(`${emu.urls.http}/subscriptions?api-version=2019-11-01`, {
      headers: { authorization: `Bearer ${String(sys.body.access_token)}` },
    });
    assert.equal(((await subs.json()) as { value: unknown[] }).value.length, 1);
  });

  it("App Service endpoint needs X-IDENTITY-HEADER and api-version 2019-08-01", async () => {
    const env = emu.managedIdentityEnv;
    assert.equal(env.IDENTITY_HEADER, "test-identity-header");
    const url = `${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=${encodeURIComponent("https://vault.azure.net")}`;
    assert.equal((await get(url)).status, 401);
    assert.equal((await get(url, { "X-IDENTITY-HEADER": "wrong" })).status, 401);
    const ok = await get(url, { "X-IDENTITY-HEADER": "test-identity-header" });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.token_type, "Bearer");
    assert.equal(claims(ok.body.access_token).aud, "https://vault.azure.net");
  });
});

describe("emulator: fault injection", () => {
  let emu: Emulator;
  before(async () => (emu = await emulator()));
  after(() => emu.close());

  it("5xx, 429 with Retry-After and delays hit only the chosen endpoint, count times", async () => {
    await emu.control.injectFault({ endpoint: "token", type: "status", status: 503, count: 2 });
    assert.equal((await ropc(emu)).status, 503);
    const second = await ropc(emu);
    assert.equal(second.status, 503);
    assert.equal(second.body.error, "server_error");
    assert.equal((await ropc(emu)).status, 200);

    await emu.control.injectFault({ endpoint: "token", type: "throttle", retryAfter: 7, count: 1 });
    const throttled = await ropc(emu);
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get("retry-after"), "7");

    await emu.control.injectFault({ endpoint: "subscriptions", type: "status", status: 500, count: 1 });
    const armFault = await fetch(`${emu.urls.http}/subscriptions?api-version=2019-11-01`);
    assert.equal(armFault.status, 500);
    assert.equal(((await armFault.json()) as { error: { code: string } }).error.code, "ServiceUnavailable");

    await emu.control.injectFault({ endpoint: "token", type: "delay", delayMs: 300, count: 1 });
    const t0 = Date.now();
    assert.equal((await ropc(emu)).status, 200);
    assert.ok(Date.now() - t0 >= 290);
    const faulted = (await emu.control.requests({ endpoint: "token" })).requests.filter((r) => r.fault);
    assert.deepEqual(
      faulted.map((r) => [r.fault, r.status]),
      [
        ["status", 503],
        ["status", 503],
        ["throttle", 429],
        ["delay", 200],
      ],
    );
  });

  it("a connection reset drops the connection", async () => {
    await emu.control.injectFault({ endpoint: "openid-configuration", type: "reset", count: 1 });
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const req = request(`${emu.urls.http}/organizations/v2.0/.well-known/openid-configuration`, (res) => {
        res.resume();
        resolve(undefined);
      });
      req.on("error", (e) => resolve(e));
      req.end();
    });
    assert.equal(err?.code, "ECONNRESET");
    assert.equal(
      (await get(`${emu.urls.http}/organizations/v2.0/.well-known/openid-configuration`)).status,
      200,
    );
  });

  it("rejects unknown fault endpoints with a readable message", async () => {
    await assert.rejects(
      emu.control.injectFault({ endpoint: "nope", type: "status" }),
      /Unknown endpoint 'nope'/,
    );
    await emu.control.clearFaults();
  });
});
