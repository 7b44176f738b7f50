/**
 * Hostile input: thousands of generated requests to the token, authorize, device code and
 * sign-in endpoints. The emulator must never crash, hang or answer 500, and the token
 * endpoint must always answer JSON that is either tokens or an Entra-style error.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { Emulator } from "../../src/emulator/index.js";
import { ALICE, ARM_SCOPE, AZ, CONTOSO, NATIVE_APP, SP, USER_SCOPE, emulator, ropc } from "./helpers.js";

const TIMEOUT_MS = 10_000;

async function send(
  url: string,
  init: RequestInit,
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(TIMEOUT_MS) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function assertEntraError(status: number, text: string): void {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    assert.fail(`not JSON (HTTP ${status}): ${text.slice(0, 200)}`);
  }
  if (status === 200) {
    assert.equal(typeof body.access_token, "string");
    return;
  }
  assert.ok(status >= 400 && status < 500, `HTTP ${status}: ${text.slice(0, 300)}`);
  assert.equal(typeof body.error, "string", text);
  assert.match(String(body.error_description), /^AADSTS\d+: /, text);
  assert.ok(Array.isArray(body.error_codes), text);
  assert.equal(typeof body.trace_id, "string");
  assert.equal(typeof body.correlation_id, "string");
}

/** Strings a client might send, from plausible to hostile. */
const junk = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.constantFrom(
    "",
    " ",
    "%",
    "%zz",
    "\u0000",
    "a".repeat(5000),
    "eyJhbGciOiJub25lIn0.e30.",
    "a.b.c",
    "null",
    "{}",
    "[]",
  ),
  fc.uuid(),
);

const tenant = fc.oneof(
  fc.constantFrom(
    "organizations",
    "common",
    "consumers",
    CONTOSO,
    "contoso.onmicrosoft.com",
    "CONTOSO.ONMICROSOFT.COM",
  ),
  // "." and ".." would be resolved away by the URL parser before the request is sent.
  junk.map((s) => (/^\.*$/.test(s) ? "x" : encodeURIComponent(s))),
);

const scope = fc.oneof(
  fc.constantFrom(
    USER_SCOPE,
    ARM_SCOPE,
    "openid",
    "User.Read",
    "https://graph.microsoft.com/.default https://vault.azure.net/.default",
  ),
  fc
    .array(
      fc.oneof(junk, fc.constantFrom("offline_access", ".default", "/", "//.default", "https://x/.default")),
      { maxLength: 5 },
    )
    .map((a) => a.join(" ")),
);

const claims = fc.oneof(
  fc.constant(JSON.stringify({ access_token: { xms_cc: { values: ["CP1"] } } })),
  fc.json(),
  junk,
);

const tokenForm = fc.record(
  {
    grant_type: fc.oneof(
      fc.constantFrom(
        "password",
        "refresh_token",
        "client_credentials",
        "authorization_code",
        "device_code",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
      ),
      junk,
    ),
    client_id: fc.oneof(fc.constantFrom(AZ, SP.clientId, NATIVE_APP), junk),
    scope,
    username: fc.oneof(fc.constant(ALICE.upn), junk),
    password: fc.oneof(fc.constant(ALICE.password), junk),
    client_secret: fc.oneof(fc.constant(SP.secret), junk),
    client_assertion: junk,
    client_assertion_type: fc.oneof(
      fc.constant("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
      junk,
    ),
    refresh_token: junk,
    code: junk,
    code_verifier: junk,
    redirect_uri: fc.oneof(fc.constant("http://localhost:1234"), junk),
    device_code: junk,
    claims,
    client_info: fc.constantFrom("1", "0", ""),
  },
  { requiredKeys: [] },
);

describe("emulator: fuzzing", () => {
  let emu: Emulator;
  let refreshToken: string;
  before(async () => {
    emu = await emulator();
    refreshToken = String((await ropc(emu)).body.refresh_token);
  });
  after(() => emu.close());

  it("token endpoint: tokens or an Entra-style error, never a 500", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        tenant,
        tokenForm,
        fc.boolean(),
        fc.constantFrom("application/x-www-form-urlencoded", "application/json", "text/plain", ""),
        async (t, form, useRealRefresh, contentType) => {
          const f: Record<string, string> = { ...form };
          if (useRealRefresh && f.grant_type === "refresh_token") f.refresh_token = refreshToken;
          const r = await send(`${emu.urls.http}/${t}/oauth2/v2.0/token`, {
            method: "POST",
            headers: contentType ? { "content-type": contentType } : {},
            body: new URLSearchParams(f).toString(),
          });
          assertEntraError(r.status, r.text);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("token endpoint: raw bodies and methods", { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("POST", "GET", "PUT", "DELETE", "PATCH"),
        fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 200 }), fc.json()),
        async (method, body) => {
          const r = await send(`${emu.urls.http}/organizations/oauth2/v2.0/token`, {
            method,
            ...(method === "GET" ? {} : { body }),
          });
          assertEntraError(r.status, r.text);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("authorize: a page or a redirect to a loopback URI, never a 500", { timeout: 120_000 }, async () => {
    const param = fc.oneof(
      junk,
      fc.constantFrom("code", "S256", "plain", "none", "login", "consent", "form_post", "fragment"),
    );
    await fc.assert(
      fc.asyncProperty(
        tenant,
        fc.record(
          {
            client_id: fc.oneof(fc.constantFrom(AZ, NATIVE_APP, SP.clientId), junk),
            response_type: param,
            redirect_uri: fc.oneof(
              fc.constantFrom(
                "http://localhost:1234",
                "http://127.0.0.1:9/cb",
                "https://evil.example/",
                "http://localhost:1234#x",
              ),
              junk,
            ),
            scope,
            state: junk,
            nonce: junk,
            code_challenge: fc.oneof(fc.constant("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), junk),
            code_challenge_method: param,
            prompt: param,
            response_mode: param,
            login_hint: junk,
            claims,
          },
          { requiredKeys: [] },
        ),
        async (t, q) => {
          const url = `${emu.urls.http}/${t}/oauth2/v2.0/authorize?${new URLSearchParams(q).toString()}`;
          const r = await send(url, {});
          // A request line past Node's 16 KiB header limit is refused by the HTTP layer before the
          // emulator sees it (a bare 400/431, no page; seed -478122901): not a 500, nothing to check.
          if (url.length > 16 * 1024 && [400, 414, 431].includes(r.status)) return;
          assert.ok([200, 302, 400].includes(r.status), `HTTP ${r.status}: ${r.text.slice(0, 300)}`);
          if (r.status === 302) {
            const loc = new URL(r.headers.get("location")!);
            assert.equal(loc.protocol, "http:");
            assert.ok(["localhost", "127.0.0.1"].includes(loc.hostname), `redirected to ${loc.href}`);
            const p = loc.hash ? new URLSearchParams(loc.hash.slice(1)) : loc.searchParams;
            assert.ok(p.get("error") !== null || p.get("code") !== null);
            if (p.get("error") !== null) assert.match(p.get("error_description") ?? "", /^AADSTS\d+: /);
          } else {
            assert.match(r.headers.get("content-type") ?? "", /text\/html/);
            if (r.status === 400) assert.match(r.text, /id="error"/);
          }
        },
      ),
      { numRuns: 1200 },
    );
  });

  it("sign-in form posts, device code and ARM paths with junk", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          "/organizations/login",
          "/devicelogin",
          "/organizations/oauth2/v2.0/devicecode",
          "/subscriptions",
          "/tenants",
          `/subscriptions/c0ffee00-0000-4000-8000-000000000001/resourcegroups/rg`,
          "/metadata/identity/oauth2/token",
          "/msi/token",
          "/common/userrealm/x",
          "/_emulator/faults",
        ),
        fc.constantFrom("GET", "POST", "PUT", "DELETE"),
        fc.dictionary(
          fc.constantFrom(
            "flow",
            "step",
            "username",
            "password",
            "otc",
            "action",
            "client_id",
            "scope",
            "api-version",
            "resource",
          ),
          junk,
        ),
        fc.option(fc.oneof(junk, fc.constant("Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig")), { nil: undefined }),
        async (path, method, fields, auth) => {
          const qs = new URLSearchParams(fields).toString();
          const r = await send(`${emu.urls.http}${path}?${method === "GET" ? qs : ""}`, {
            method,
            // fetch only sends visible ASCII in headers; the server sees the rest via node:http tests.
            headers: {
              ...(auth ? { authorization: auth.replace(/[^\x20-\x7e]/g, "") } : {}),
              Metadata: "true",
            },
            ...(method === "GET" ? {} : { body: qs }),
          });
          assert.ok(r.status < 500, `HTTP ${r.status} for ${method} ${path}: ${r.text.slice(0, 300)}`);
        },
      ),
      { numRuns: 800 },
    );
    // Nothing the fuzzer sent left a fault behind or broke the emulator.
    await emu.control.clearFaults();
    assert.equal((await ropc(emu)).status, 200);
  });
});
