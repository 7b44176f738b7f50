/**
 * Table tests of the sign-in building blocks that need no identity provider: device code
 * polling (interval, slow_down, expiry) with a fake clock and fetch, claims merging, pasted
 * redirect parsing, Entra error mapping, certificates, the profile's side-by-side rule.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { BUILTIN_CLOUDS } from "../../src/core/clouds.js";
import type { Context } from "../../src/core/context.js";
import { authority, tokenEndpoint } from "../../src/core/entra/authority.js";
import { claimsParameter } from "../../src/core/entra/claims.js";
import { identityProviderError } from "../../src/core/entra/errors.js";
import { loadCertificate } from "../../src/core/flows/certificate.js";
import { parseRetryAfter } from "../../src/core/flows/http.js";
import { parsePastedRedirect } from "../../src/core/flows/interactive.js";
import { userLoginCommand } from "../../src/core/flows/token.js";
import { deviceCodeSignIn } from "../../src/core/flows/user.js";
import { mergeSignIn } from "../../src/core/profile/accounts.js";
import type { SubscriptionEntry } from "../../src/core/profile/types.js";
import { testContext } from "../signin/helpers.js";

const cloud = BUILTIN_CLOUDS[0]!;
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const idToken = `${b64({ alg: "none" })}.${b64({ preferred_username: "eve@contoso.com", tid: "t1" })}.`;

function fakeDeviceFlow(answers: { status: number; body: unknown }[]): {
  ctx: Context;
  sleeps: number[];
  polls: () => number;
} {
  const { ctx } = testContext();
  let now = 1_000_000;
  const sleeps: number[] = [];
  let polls = 0;
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const fake: Context = {
    ...ctx,
    clock: {
      now: () => now,
      sleep: (ms) => {
        sleeps.push(ms);
        now += ms;
        return Promise.resolve();
      },
    },
    fetch: (input) => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (url.endsWith("/devicecode")) {
        return Promise.resolve(
          json(200, {
            device_code: "dc",
            user_code: "ABC",
            verification_uri: "https://microsoft.com/devicelogin",
            expires_in: 60,
            interval: 2,
          }),
        );
      }
      const a = answers[Math.min(polls++, answers.length - 1)]!;
      return Promise.resolve(json(a.status, a.body));
    },
  };
  return { ctx: fake, sleeps, polls: () => polls };
}

const pending = {
  status: 400,
  body: { error: "authorization_pending", error_description: "AADSTS70016: pending" },
};
const slow = { status: 400, body: { error: "slow_down" } };
const ok = {
  status: 200,
  body: {
    access_token: "at",
    refresh_token: "rt",
    expires_in: 3600,
    id_token: idToken,
    token_type: "Bearer",
  },
};

describe("device code polling", () => {
  it("waits `interval` between polls and 5 s more after each slow_down (RFC 8628 §3.5)", async () => {
    const f = fakeDeviceFlow([pending, slow, pending, slow, ok]);
    const r = await deviceCodeSignIn(f.ctx, {
      cloud,
      tenant: "organizations",
      clientId: "c",
      scopes: ["s"],
      qr: false,
    });
    assert.equal(r.username, "eve@contoso.com");
    assert.deepEqual(f.sleeps, [2000, 2000, 7000, 7000, 12000]);
  });

  it("stops when the code expires, and on expired_token / declined", async () => {
    const f = fakeDeviceFlow([pending]);
    await assert.rejects(
      deviceCodeSignIn(f.ctx, { cloud, tenant: "organizations", clientId: "c", scopes: ["s"], qr: false }),
      /expired before the sign-in was approved/,
    );
    assert.equal(f.polls(), 30, "60 s at 2 s intervals");
    const g = fakeDeviceFlow([{ status: 400, body: { error: "expired_token" } }]);
    await assert.rejects(
      deviceCodeSignIn(g.ctx, { cloud, tenant: "organizations", clientId: "c", scopes: ["s"], qr: false }),
      /expired/,
    );
    const h = fakeDeviceFlow([{ status: 400, body: { error: "authorization_declined" } }]);
    await assert.rejects(
      deviceCodeSignIn(h.ctx, { cloud, tenant: "organizations", clientId: "c", scopes: ["s"], qr: false }),
      (e: Error & { code?: string }) => e.code === "cancelled",
    );
  });
});

describe("claims", () => {
  it("CP1 by default, merged with a challenge (JSON or base64), off with AZURE_IDENTITY_DISABLE_CP1", () => {
    assert.equal(claimsParameter({}), '{"access_token":{"xms_cc":{"values":["CP1"]}}}');
    const challenge = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}';
    const merged = {
      access_token: { xms_cc: { values: ["CP1"] }, nbf: { essential: true, value: "1700000000" } },
    };
    assert.deepEqual(JSON.parse(claimsParameter({}, challenge)!), merged);
    assert.deepEqual(JSON.parse(claimsParameter({}, Buffer.from(challenge).toString("base64"))!), merged);
    assert.equal(claimsParameter({ AZURE_IDENTITY_DISABLE_CP1: "1" }), undefined);
    assert.throws(() => claimsParameter({}, "%%%"), /neither JSON nor base64/);
  });
});

describe("pasted redirect addresses", () => {
  const cases: [string, string | undefined][] = [
    ["http://localhost:1234/?code=abc&state=xyz", "abc"],
    ["  http://localhost:1234?code=abc&state=xyz\n", "abc"],
    ["?code=abc&state=xyz", "abc"],
    ["some text\nhttp://localhost:1/?error=access_denied&state=s\n", undefined],
    ["hello", undefined],
  ];
  for (const [text, code] of cases) {
    it(JSON.stringify(text), () => {
      const p = parsePastedRedirect(text);
      if (text === "hello") assert.equal(p, undefined);
      else assert.equal(p?.get("code") ?? undefined, code);
    });
  }
});

describe("Entra errors", () => {
  const login = "azkeep login --tenant t";
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [
      {
        error: "invalid_grant",
        error_description: "AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: x",
      },
      "auth_required",
      /expired\. Run:\nazkeep login --tenant t/,
    ],
    [
      { error: "invalid_grant", error_description: "AADSTS50076: Due to a configuration change … MFA" },
      "auth_required",
      /Multi-factor/,
    ],
    [
      { error: "interaction_required", error_description: "AADSTS50079: enroll" },
      "auth_required",
      /Multi-factor/,
    ],
    [
      { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided." },
      "auth_failed",
      /--certificate/,
    ],
    [
      { error: "invalid_grant", error_description: "AADSTS99999: something new" },
      "auth_required",
      /Interactive authentication is needed/,
    ],
    [
      { error: "invalid_request", error_description: "AADSTS90002: Tenant 'x' not found." },
      "auth_failed",
      /--tenant/,
    ],
  ];
  for (const [body, code, hint] of cases) {
    it(`${String(body.error_description).slice(0, 14)} → ${code}`, () => {
      const e = identityProviderError(body as never, 400, login);
      assert.equal(e.code, code);
      assert.match(e.hint ?? "", hint);
      assert.doesNotMatch(e.message, /Trace ID/);
    });
  }
  it("Retry-After as seconds or a date", () => {
    assert.equal(parseRetryAfter("7", 0), 7000);
    assert.equal(parseRetryAfter(new Date(60_000).toUTCString(), 0), 60_000);
    assert.equal(parseRetryAfter("soon", 0), undefined);
  });
  it("the login hint names tenant, scope and claims as az's does", () => {
    assert.equal(
      userLoginCommand({
        tenant: "contoso.com",
        scopes: ["https://management.core.windows.net//.default", "offline_access"],
      }),
      "azkeep login --tenant contoso.com --scope https://management.core.windows.net//.default",
    );
    assert.equal(userLoginCommand({ tenant: "organizations" }), "azkeep login");
  });
  it("authorities: tenant segment, ADFS without it", () => {
    assert.equal(
      tokenEndpoint(cloud, "contoso.com"),
      "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token",
    );
    const adfs = {
      ...cloud,
      endpoints: { ...cloud.endpoints, activeDirectory: "https://stack.local/adfs/" },
    };
    assert.equal(authority(adfs, "x"), "https://stack.local/adfs");
    assert.equal(tokenEndpoint(adfs, "x"), "https://stack.local/adfs/oauth2/token");
  });
});

describe("certificates", () => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const cases: [string, string, RegExp][] = [
    ["empty", "", /is not a PEM file/],
    ["key only", keyPem, /has no certificate/],
    [
      "garbage key",
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      /cannot be read/,
    ],
    [
      "encrypted",
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      /encrypted private key/,
    ],
  ];
  for (const [name, pem, re] of cases) {
    it(name, () =>
      assert.throws(
        () => loadCertificate(pem),
        (e: Error & { code?: string }) => e.code === "bad_input" && re.test(e.message),
      ),
    );
  }
});

describe("profile: the side-by-side rule", () => {
  const entry = (id: string, user: string, state = "Enabled", isDefault = false): SubscriptionEntry => ({
    id,
    name: id,
    state,
    user: { name: user, type: user.includes("@") ? "user" : "servicePrincipal" },
    isDefault,
    tenantId: "t",
    environmentName: "AzureCloud",
  });
  it("a new identity adds entries next to the old ones; the same identity replaces its own", () => {
    const profile = { subscriptions: [entry("s1", "a@x", "Enabled", true), entry("s2", "a@x")] };
    mergeSignIn(profile, "AzureCloud", { name: "sp", type: "servicePrincipal" }, [entry("s1", "sp")]);
    assert.deepEqual(
      profile.subscriptions.map((e) => `${e.id}/${e.user.name}/${e.isDefault}`),
      ["s1/sp/true", "s1/a@x/false", "s2/a@x/false"],
    );
    mergeSignIn(profile, "AzureCloud", { name: "A@X", type: "user" }, [
      entry("s3", "a@x", "Disabled"),
      entry("s2", "a@x"),
    ]);
    assert.deepEqual(
      profile.subscriptions.map((e) => `${e.id}/${e.user.name}/${e.isDefault}`),
      ["s3/a@x/false", "s2/a@x/true", "s1/sp/false"],
    );
  });
});
