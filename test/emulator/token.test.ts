import assert from "node:assert/strict";
import { createHash, createPrivateKey, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { SignJWT, createLocalJWKSet, jwtVerify } from "jose";
import {
  DEFAULT_SP_CERT_PEM,
  DEFAULT_SP_KEY_PEM,
  mintFederatedToken,
  type Emulator,
} from "../../src/emulator/index.js";
import {
  ALICE,
  ARM_SCOPE,
  AZ,
  BOB,
  CONTOSO,
  FABRIKAM,
  SP,
  TAILSPIN,
  USER_SCOPE,
  WOODGROVE,
  claims,
  emulator,
  get,
  jwtHeader,
  post,
  rawGet,
  ropc,
  token,
} from "./helpers.js";

function entraShaped(body: Record<string, unknown>, code: number): void {
  assert.equal(typeof body.error, "string");
  assert.match(String(body.error_description), new RegExp(`^AADSTS${code}: `));
  assert.deepEqual(body.error_codes, [code]);
  assert.match(String(body.timestamp), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  assert.match(String(body.trace_id), /^[0-9a-f-]{36}$/);
  assert.equal(typeof body.correlation_id, "string");
}

function certAssertion(emu: Emulator, tenant: string, header: "x5t" | "x5t#S256", audience?: string) {
  const der = Buffer.from(DEFAULT_SP_CERT_PEM.replace(/-----[^-]+-----|\s/g, ""), "base64");
  // x5t padded as MSAL Python sends it, x5t#S256 unpadded as MSAL Node does.
  const thumb =
    header === "x5t"
      ? createHash("sha1").update(der).digest("base64").replace(/\+/g, "-").replace(/\//g, "_")
      : createHash("sha256").update(der).digest("base64url");
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", [header]: thumb })
    .setIssuer(SP.clientId)
    .setSubject(SP.clientId)
    .setAudience(audience ?? `${emu.urls.http}/${tenant}/oauth2/v2.0/token`)
    .setIssuedAt()
    .setNotBefore(Math.floor(Date.now() / 1000))
    .setExpirationTime("10m")
    .sign(createPrivateKey(DEFAULT_SP_KEY_PEM));
}

describe("emulator: discovery", () => {
  let emu: Emulator;
  before(async () => (emu = await emulator()));
  after(() => emu.close());

  it("publishes the multi-tenant {tenantid} issuer for organizations and common", async () => {
    for (const seg of ["organizations", "common"]) {
      const { status, body } = await get(`${emu.urls.http}/${seg}/v2.0/.well-known/openid-configuration`);
      assert.equal(status, 200);
      assert.equal(body.issuer, `${emu.urls.http}/{tenantid}/v2.0`);
      assert.equal(body.token_endpoint, `${emu.urls.http}/${seg}/oauth2/v2.0/token`);
      assert.equal(body.device_authorization_endpoint, `${emu.urls.http}/${seg}/oauth2/v2.0/devicecode`);
      assert.equal(body.cloud_instance_name, "microsoftonline.com");
    }
  });

  it("resolves a domain to the tenant GUID in every URL, derived from the Host header", async () => {
    const { body } = await get(
      `${emu.urls.http}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration`,
    );
    assert.equal(body.issuer, `${emu.urls.http}/${CONTOSO}/v2.0`);
    assert.equal(body.authorization_endpoint, `${emu.urls.http}/${CONTOSO}/oauth2/v2.0/authorize`);
    assert.equal(body.tenant_region_scope, "NA");
    const proxied = await rawGet(`${emu.urls.http}/${CONTOSO}/v2.0/.well-known/openid-configuration`, {
      host: "login.microsoftonline.com:80",
    });
    assert.equal(proxied.body.issuer, `http://login.microsoftonline.com/${CONTOSO}/v2.0`);
    const hostile = await rawGet(`${emu.urls.http}/${CONTOSO}/v2.0/.well-known/openid-configuration`, {
      host: 'evil"><script>',
    });
    assert.equal(hostile.body.issuer, `${emu.urls.http}/${CONTOSO}/v2.0`);
  });

  it("answers an unknown tenant with AADSTS90002", async () => {
    const { status, body } = await get(`${emu.urls.http}/nope.example/v2.0/.well-known/openid-configuration`);
    assert.equal(status, 400);
    entraShaped(body, 90002);
  });

  it("serves the v1 document (az resolves --tenant domains through its issuer)", async () => {
    const { body } = await get(`${emu.urls.http}/fabrikam.onmicrosoft.com/.well-known/openid-configuration`);
    assert.equal(body.issuer, `https://sts.windows.net/${FABRIKAM}/`);
  });

  it("serves JWKS, instance discovery and user realm", async () => {
    const keys = await get(`${emu.urls.http}/common/discovery/v2.0/keys`);
    assert.equal((keys.body.keys as unknown[]).length, 1);
    const inst = await get(
      `${emu.urls.http}/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`${emu.urls.http}/${CONTOSO}/oauth2/v2.0/authorize`)}`,
    );
    assert.equal(
      inst.body.tenant_discovery_endpoint,
      `${emu.urls.http}/${CONTOSO}/v2.0/.well-known/openid-configuration`,
    );
    const realm = await get(`${emu.urls.http}/common/userrealm/${ALICE.upn}?api-version=1.0`);
    assert.equal(realm.body.account_type, "Managed");
    const unknown = await get(`${emu.urls.http}/common/userrealm/x@nowhere.example?api-version=1.0`);
    assert.equal(unknown.body.account_type, "Unknown");
  });
});

describe("emulator: token endpoint", () => {
  let emu: Emulator;
  before(async () => (emu = await emulator()));
  after(() => emu.close());

  it("ROPC issues access, refresh and id tokens as Entra does", async () => {
    const { status, body } = await ropc(emu);
    assert.equal(status, 200);
    assert.equal(body.token_type, "Bearer");
    assert.equal(
      body.scope,
      "https://management.core.windows.net//user_impersonation https://management.core.windows.net//.default",
    );
    assert.equal(body.expires_in, 3600);
    assert.equal(body.foci, "1");
    assert.equal(typeof body.refresh_token, "string");
    const at = claims(body.access_token);
    assert.equal(jwtHeader(body.access_token).alg, "RS256");
    assert.equal(at.aud, "https://management.core.windows.net/");
    assert.equal(at.iss, `https://sts.windows.net/${CONTOSO}/`);
    assert.equal(at.tid, CONTOSO);
    assert.equal(at.oid, ALICE.oid);
    assert.equal(at.upn, ALICE.upn);
    assert.equal(at.appid, AZ);
    assert.equal(at.scp, "user_impersonation");
    assert.equal(at.xms_cc, undefined);
    assert.ok(Number(at.exp) - Number(at.iat) === 3600 && at.nbf === at.iat);
    const id = claims(body.id_token);
    assert.equal(id.aud, AZ);
    assert.equal(id.iss, `${emu.urls.http}/${CONTOSO}/v2.0`);
    assert.equal(id.preferred_username, ALICE.upn);
    const ci = JSON.parse(Buffer.from(String(body.client_info), "base64url").toString()) as Record<
      string,
      string
    >;
    assert.deepEqual(ci, { uid: ALICE.oid, utid: CONTOSO });
    // The signature verifies with the published keys.
    const jwks = await get(`${emu.urls.http}/${CONTOSO}/discovery/v2.0/keys`);
    await jwtVerify(String(body.id_token), createLocalJWKSet(jwks.body as never), { audience: AZ });
  });

  it("adds xms_cc when the CP1 capability is requested", async () => {
    const { body } = await token(emu, "organizations", {
      grant_type: "password",
      client_id: AZ,
      username: ALICE.upn,
      password: ALICE.password,
      scope: USER_SCOPE,
      claims: JSON.stringify({ access_token: { xms_cc: { values: ["CP1"] } } }),
    });
    assert.deepEqual(claims(body.access_token).xms_cc, ["CP1"]);
  });

  it("answers the Entra errors a client must handle", async () => {
    const cases: [Promise<{ status: number; body: Record<string, unknown> }>, number, number, string][] = [
      [ropc(emu, "organizations", { ...ALICE, password: "wrong" }), 400, 50126, "invalid_grant"],
      [
        ropc(emu, "organizations", { upn: "nobody@contoso.onmicrosoft.com", password: "x", oid: "" }),
        400,
        50034,
        "invalid_grant",
      ],
      [ropc(emu, "nope.example"), 400, 90002, "invalid_tenant"],
      [ropc(emu, WOODGROVE), 400, 50076, "interaction_required"],
      [
        ropc(emu, "organizations", ALICE, "https://not-a-resource.example/.default"),
        400,
        500011,
        "invalid_resource",
      ],
      [ropc(emu, "organizations", ALICE, 'bad"scope'), 400, 70011, "invalid_scope"],
      [ropc(emu, "organizations", BOB as never, USER_SCOPE), 200, 0, ""],
      [
        token(emu, CONTOSO, {
          grant_type: "client_credentials",
          client_id: SP.clientId,
          client_secret: "wrong",
          scope: ARM_SCOPE,
        }),
        401,
        7000215,
        "invalid_client",
      ],
      [
        token(emu, CONTOSO, {
          grant_type: "client_credentials",
          client_id: randomUUID(),
          client_secret: "x",
          scope: ARM_SCOPE,
        }),
        400,
        700016,
        "unauthorized_client",
      ],
      [token(emu, CONTOSO, { grant_type: "nonsense", client_id: AZ }), 400, 70003, "unsupported_grant_type"],
      [token(emu, CONTOSO, { client_id: AZ }), 400, 900144, "invalid_request"],
      [
        token(emu, CONTOSO, {
          grant_type: "refresh_token",
          client_id: AZ,
          refresh_token: "garbage",
          scope: USER_SCOPE,
        }),
        400,
        9002313,
        "invalid_grant",
      ],
    ];
    for (const [p, status, code, error] of cases) {
      const r = await p;
      assert.equal(r.status, status, JSON.stringify(r.body));
      if (code) {
        entraShaped(r.body, code);
        assert.equal(r.body.error, error);
      }
    }
  });

  it("client credentials with a secret, a certificate (x5t and x5t#S256) and a federated token", async () => {
    const secret = await token(emu, CONTOSO, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_secret: SP.secret,
      scope: "https://graph.microsoft.com/.default",
    });
    assert.equal(secret.status, 200, JSON.stringify(secret.body));
    const c = claims(secret.body.access_token);
    assert.equal(c.aud, "https://graph.microsoft.com");
    assert.equal(c.appid, SP.clientId);
    assert.equal(c.idtyp, "app");
    assert.deepEqual(c.roles, ["Application.Read.All"]);
    assert.equal(secret.body.refresh_token, undefined);

    for (const h of ["x5t", "x5t#S256"] as const) {
      const r = await token(emu, CONTOSO, {
        grant_type: "client_credentials",
        client_id: SP.clientId,
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: await certAssertion(emu, CONTOSO, h),
        scope: ARM_SCOPE,
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(claims(r.body.access_token).appidacr, "2");
    }
    const wrongAud = await token(emu, CONTOSO, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await certAssertion(emu, CONTOSO, "x5t", "https://evil.example/token"),
      scope: ARM_SCOPE,
    });
    assert.equal(wrongAud.status, 401);

    const fed = await token(emu, CONTOSO, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await mintFederatedToken(),
      scope: ARM_SCOPE,
    });
    assert.equal(fed.status, 200, JSON.stringify(fed.body));
    const badSubject = await token(emu, CONTOSO, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await mintFederatedToken({ subject: "repo:evil/evil:ref:refs/heads/main" }),
      scope: ARM_SCOPE,
    });
    entraShaped(badSubject.body, 700213);
    const badAudience = await token(emu, CONTOSO, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await emu.control.mintFederatedToken({ audience: "api://other" }),
      scope: ARM_SCOPE,
    });
    entraShaped(badAudience.body, 700212);
    const wrongTenant = await token(emu, FABRIKAM, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_secret: SP.secret,
      scope: ARM_SCOPE,
    });
    entraShaped(wrongTenant.body, 700016);
  });

  it("refresh tokens work across resources and tenants, rotate, and keep the old one until it expires", async () => {
    const first = await ropc(emu);
    const rt1 = String(first.body.refresh_token);
    const graph = await token(emu, FABRIKAM, {
      grant_type: "refresh_token",
      client_id: AZ,
      refresh_token: rt1,
      scope: "https://graph.microsoft.com/.default offline_access openid profile",
      client_info: "1",
    });
    assert.equal(graph.status, 200, JSON.stringify(graph.body));
    const g = claims(graph.body.access_token);
    assert.equal(g.aud, "https://graph.microsoft.com");
    assert.equal(g.tid, FABRIKAM);
    assert.equal(g.oid, "aaaaaaaa-0000-4000-8000-000000000002");
    assert.equal(g.idp, `https://sts.windows.net/${CONTOSO}/`);
    const rt2 = String(graph.body.refresh_token);
    assert.notEqual(rt2, rt1);
    // The old refresh token still works (Entra keeps it valid until it expires).
    const again = await token(emu, TAILSPIN, {
      grant_type: "refresh_token",
      client_id: AZ,
      refresh_token: rt1,
      scope: USER_SCOPE,
    });
    assert.equal(again.status, 200);
    // A FOCI sibling (Azure PowerShell) may use it; another client may not.
    const ps = await token(emu, CONTOSO, {
      grant_type: "refresh_token",
      client_id: "1950a258-227b-4e31-a9cf-717495945fc2",
      refresh_token: rt2,
      scope: USER_SCOPE,
    });
    assert.equal(ps.status, 200);
    const other = await token(emu, CONTOSO, {
      grant_type: "refresh_token",
      client_id: "c0c0c0c0-0000-4000-8000-00000000a001",
      refresh_token: rt2,
      scope: USER_SCOPE,
    });
    assert.equal(other.status, 400);
    // Refresh into the MFA tenant without MFA: interaction_required.
    const mfa = await token(emu, WOODGROVE, {
      grant_type: "refresh_token",
      client_id: AZ,
      refresh_token: rt2,
      scope: USER_SCOPE,
    });
    entraShaped(mfa.body, 50076);
    assert.equal(mfa.body.error, "interaction_required");
  });

  it("expired and revoked refresh tokens give 700082 and 50173", async () => {
    const rt = String((await ropc(emu)).body.refresh_token);
    await emu.control.expireRefreshTokens(ALICE.upn);
    const expired = await token(emu, CONTOSO, {
      grant_type: "refresh_token",
      client_id: AZ,
      refresh_token: rt,
      scope: USER_SCOPE,
    });
    entraShaped(expired.body, 700082);
    const rt2 = String((await ropc(emu)).body.refresh_token);
    await emu.control.revokeRefreshTokens(ALICE.upn);
    const revoked = await token(emu, CONTOSO, {
      grant_type: "refresh_token",
      client_id: AZ,
      refresh_token: rt2,
      scope: USER_SCOPE,
    });
    entraShaped(revoked.body, 50173);
    // Signing in again works.
    assert.equal((await ropc(emu)).status, 200);
  });

  it("lifetimes are configurable", async () => {
    await emu.control.setLifetimes({ accessToken: 120, refreshToken: 1 });
    const r = await ropc(emu);
    assert.equal(r.body.expires_in, 120);
    await emu.control.advanceClock(2);
    const refreshed = await token(emu, CONTOSO, {
      grant_type: "refresh_token",
      client_id: AZ,
      refresh_token: String(r.body.refresh_token),
      scope: USER_SCOPE,
    });
    entraShaped(refreshed.body, 700082);
    await emu.control.reset();
    assert.equal((await ropc(emu)).body.expires_in, 3600);
  });

  it("device code: pending, approve through control, redeem once; deny; expire", async () => {
    const dc = await post(`${emu.urls.http}/organizations/oauth2/v2.0/devicecode`, {
      client_id: AZ,
      scope: USER_SCOPE,
    });
    assert.equal(dc.status, 200);
    assert.match(String(dc.body.user_code), /^[A-Z0-9]{9}$/);
    assert.equal(dc.body.verification_uri, `${emu.urls.http}/devicelogin`);
    assert.match(String(dc.body.message), /enter the code/);
    const poll = (grant = "urn:ietf:params:oauth:grant-type:device_code") =>
      token(emu, "organizations", {
        grant_type: grant,
        client_id: AZ,
        device_code: String(dc.body.device_code),
      });
    const pending = await poll();
    entraShaped(pending.body, 70016);
    assert.equal(pending.body.error, "authorization_pending");
    const pendingCode = await emu.control.waitForDeviceCode();
    assert.equal(pendingCode.userCode, dc.body.user_code);
    await emu.control.approveDeviceCode(String(dc.body.user_code), ALICE.upn);
    const ok = await poll("device_code");
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(claims(ok.body.access_token).amr, ["pwd", "mfa"]);
    assert.equal((await poll()).status, 400);

    const dc2 = await post(`${emu.urls.http}/organizations/oauth2/v2.0/devicecode`, {
      client_id: AZ,
      scope: USER_SCOPE,
    });
    await emu.control.denyDeviceCode(String(dc2.body.user_code));
    const denied = await token(emu, "organizations", {
      grant_type: "device_code",
      client_id: AZ,
      device_code: String(dc2.body.device_code),
    });
    assert.equal(denied.body.error, "authorization_declined");

    const dc3 = await post(`${emu.urls.http}/organizations/oauth2/v2.0/devicecode`, {
      client_id: AZ,
      scope: USER_SCOPE,
    });
    await emu.control.advanceClock(901);
    const expired = await token(emu, "organizations", {
      grant_type: "device_code",
      client_id: AZ,
      device_code: String(dc3.body.device_code),
    });
    entraShaped(expired.body, 70020);
    assert.equal(expired.body.error, "expired_token");
    await emu.control.reset();
  });

  it("counts requests per endpoint and grant type, never recording secrets", async () => {
    await emu.control.reset();
    await ropc(emu);
    await ropc(emu);
    await token(emu, CONTOSO, {
      grant_type: "client_credentials",
      client_id: SP.clientId,
      client_secret: SP.secret,
      scope: ARM_SCOPE,
    });
    assert.equal(await emu.control.countRequests({ endpoint: "token" }), 3);
    assert.equal(await emu.control.countRequests({ endpoint: "token", grantType: "password" }), 2);
    const list = await emu.control.requests();
    assert.ok(!JSON.stringify(list).includes(SP.secret));
    assert.ok(!JSON.stringify(list).includes(ALICE.password));
    assert.ok(list.requests.every((r) => r.status === 200));
  });
});
