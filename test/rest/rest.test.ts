/**
 * `azkeep rest` and `azkeep token decode`: end to end against the emulator (ARM through its
 * proxy) and a local HTTP server that plays "another host"; plus the redirect rule with a
 * scripted fetch.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { BUILTIN_CLOUDS } from "../../src/core/clouds.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import { emptySecrets } from "../../src/core/store/types.js";
import { rest } from "../../src/core/tokens/rest.js";
import { fakeContext } from "../tokens/fakes.js";
import { DEV_SUB, signedIn, type SignedIn } from "../tokens/signed-in.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

describe("rest and token decode (e2e, emulator)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  let other: Server;
  let otherUrl: string;
  const seen: Seen[] = [];
  before(async () => {
    s = await signedIn();
    other = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ ok: true }));
      });
    });
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => other?.close(r));
    await s?.close();
  });

  it("lists resource groups from an ARM path with {subscriptionId}, through -o/--query", async () => {
    const r = await s.cli([
      "rest",
      "--url",
      "/subscriptions/{subscriptionId}/resourcegroups?api-version=2022-09-01",
      "--query",
      "value[].name",
      "-o",
      "tsv",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.split("\n").includes("rg-dev-app"), r.stdout);
  });

  it("PUTs a body and reads it back", async () => {
    const url = `https://management.azure.com/subscriptions/${DEV_SUB}/resourcegroups/rg-from-rest?api-version=2022-09-01`;
    const put = await s.cli([
      "rest",
      "-m",
      "put",
      "--url",
      url,
      "--body",
      '{"location":"northeurope","tags":{"by":"azkeep rest"}}',
    ]);
    assert.equal(put.code, 0, put.stderr);
    const get = await s.cli(["rest", "--url", url]);
    assert.equal(get.code, 0, get.stderr);
    const v = JSON.parse(get.stdout) as { location: string; tags: Record<string, string> };
    assert.equal(v.location, "northeurope");
    assert.equal(v.tags.by, "azkeep rest");
  });

  it("an HTTP error is one ERROR line with the status and exit 1", async () => {
    const r = await s.cli([
      "rest",
      "--url",
      "/subscriptions/00000000-0000-0000-0000-00000000dead/resourcegroups?api-version=2022-09-01",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: \w[\w ]*\(\{.*\}\)$/m);
    assert.doesNotMatch(r.stderr, /\n\s+at |eyJ/);
  });

  it("refuses to send an ARM token to another host, even with --resource naming ARM", async () => {
    seen.length = 0;
    for (const resource of ["https://management.core.windows.net/", "https://management.azure.com/"]) {
      const r = await s.cli(["rest", "--url", `${otherUrl}/steal`, "--resource", resource]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^ERROR: Refusing to send a token for Azure Resource Manager to 127\.0\.0\.1:\d+/m,
      );
      assert.match(r.stderr, /Check --url/);
    }
    assert.equal(seen.length, 0, "nothing reached the other host");
  });

  it("sends no token to a host whose audience it cannot tell, with az's warning; headers and parameters pass", async () => {
    seen.length = 0;
    const r = await s.cli([
      "rest",
      "--url",
      `${otherUrl}/echo`,
      "--headers",
      "X-Test=1",
      '{"X-Json": "two"}',
      "--uri-parameters",
      "a=1",
      "b=x y",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ok: true });
    assert.match(r.stderr, /Can't derive appropriate Azure AD resource from --url/);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers.authorization, undefined);
    assert.equal(seen[0]!.headers["x-test"], "1");
    assert.equal(seen[0]!.headers["x-json"], "two");
    assert.equal(seen[0]!.url, "/echo?a=1&b=x+y");
  });

  it("token decode reads the token from stdin and shows header, claims and expiry", async () => {
    const t = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    const r = await s.cli(["token", "decode"], { input: t.stdout });
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout) as Record<string, unknown> & {
      header: Record<string, unknown>;
      claims: Record<string, unknown>;
    };
    assert.equal(v.header.alg, "RS256");
    assert.equal(v.claims.aud, "https://management.core.windows.net/");
    assert.equal(v.claims.upn, "alice@contoso.onmicrosoft.com");
    assert.match(String(v.expiresOn), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{2}:\d{2}$/);
    assert.match(String(v.expires), /^expires in \d+ minutes?$/);
    assert.equal(v.expired, false);
    assert.ok(!r.stdout.includes(t.stdout.trim()), "the token itself is not printed");
    const dash = await s.cli(["token", "decode", "-", "-o", "table"], { input: t.stdout });
    assert.equal(dash.code, 0, dash.stderr);
    assert.match(dash.stdout, /^Audience\s+Tenant\s+Subject\s+ExpiresOn\s+Expires/);
  });

  it("token decode warns when the token is on the command line", async () => {
    const t = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    const r = await s.cli(["token", "decode", t.stdout.trim()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARNING: A token on the command line is visible to other processes/);
  });

  const malformed: [string, string, RegExp][] = [
    ["not a token", "hello world\n", /it has 1 part, not 3/],
    ["empty input", "", /No token was given on stdin/],
    ["garbage parts", "abc.def.ghi", /the header is not JSON/],
  ];
  for (const [name, input, re] of malformed) {
    it(`token decode rejects ${name} with a clear message`, async () => {
      const r = await s.cli(["token", "decode"], { input });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^ERROR: /);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /azkeep token decode/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, "");
    });
  }
});

describe("rest: redirects never carry a token out of its audience", () => {
  it("follows an ARM redirect to another host without the Authorization header", async () => {
    using ctx = fakeContext();
    const nowS = Math.floor(ctx.clock.now() / 1000);
    const secrets = emptySecrets();
    secrets.refreshTokens.push({
      homeAccountId: "o.t",
      username: "alice@contoso.com",
      clientId: "c",
      environment: "login.microsoftonline.com",
      cloud: "AzureCloud",
      homeTenantId: "t",
      secret: "rt",
      lastModified: nowS,
    });
    secrets.accessTokens.push({
      homeAccountId: "o.t",
      principal: "alice@contoso.com",
      clientId: "c",
      environment: "login.microsoftonline.com",
      cloud: "AzureCloud",
      tenantId: "t",
      target: "https://management.core.windows.net//.default",
      secret: "arm-token",
      tokenType: "Bearer",
      expiresOn: nowS + 3600,
      cachedAt: nowS,
    });
    const store = createMemoryStore({
      profile: {
        subscriptions: [
          {
            id: "s",
            name: "S",
            state: "Enabled",
            user: { name: "alice@contoso.com", type: "user" },
            isDefault: true,
            tenantId: "t",
            environmentName: "AzureCloud",
          },
        ],
      },
      secrets,
    });
    const calls: { url: string; auth: string | undefined }[] = [];
    ctx.fetch = async (input: string | URL | Request, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : input.toString();
      const headers = (init?.headers ?? {}) as Record<string, string>;
      calls.push({ url, auth: headers.Authorization });
      if (url.startsWith("https://management.azure.com/a"))
        return new Response(null, { status: 302, headers: { location: "https://management.azure.com/b" } });
      if (url.startsWith("https://management.azure.com/b"))
        return new Response(null, { status: 307, headers: { location: "https://evil.example/c" } });
      return new Response('{"stolen": false}', {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    };
    const r = await rest(
      ctx,
      { store, cloud: BUILTIN_CLOUDS[0]! },
      { url: "https://management.azure.com/a" },
    );
    assert.deepEqual(r.json, { stolen: false });
    assert.deepEqual(calls, [
      { url: "https://management.azure.com/a", auth: "Bearer arm-token" },
      { url: "https://management.azure.com/b", auth: "Bearer arm-token" },
      { url: "https://evil.example/c", auth: undefined },
    ]);
  });
});
