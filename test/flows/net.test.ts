/**
 * azkeep's fetch: NO_PROXY rules, and the emulator's CONNECT proxy with its own CA given only
 * through the Context's NODE_EXTRA_CA_CERTS (this process did not start with it).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BUILTIN_CLOUDS } from "../../src/core/clouds.js";
import { createNodeContext } from "../../src/core/context.js";
import { acquireForServicePrincipal } from "../../src/core/flows/token.js";
import { bypassesProxy, createNetworkFetch, proxyFor } from "../../src/core/net.js";
import type { Emulator } from "../../src/emulator/index.js";
import { CONTOSO, SP, emulator } from "../signin/emulator.js";

describe("NO_PROXY", () => {
  const cases: [string, string, boolean][] = [
    ["https://login.microsoftonline.com/x", "", false],
    ["https://login.microsoftonline.com/x", "*", true],
    ["https://login.microsoftonline.com/x", "microsoftonline.com", true],
    ["https://login.microsoftonline.com/x", ".microsoftonline.com", true],
    ["https://login.microsoftonline.com/x", "*.microsoftonline.com", true],
    ["https://login.microsoftonline.com/x", "online.com", false],
    ["http://127.0.0.1:8080/x", "127.0.0.1,localhost", true],
    ["http://127.0.0.1:8080/x", "127.0.0.1:9090", false],
    ["http://127.0.0.1:8080/x", "127.0.0.1:8080", true],
    ["http://[::1]:8080/x", "::1", true],
  ];
  for (const [url, noProxy, bypass] of cases) {
    it(`${url} with NO_PROXY=${JSON.stringify(noProxy)} → ${bypass ? "direct" : "proxy"}`, () =>
      assert.equal(bypassesProxy(new URL(url), noProxy), bypass));
  }
  it("https uses HTTPS_PROXY, else HTTP_PROXY; a bare host:port is taken as http://", () => {
    assert.equal(
      proxyFor(new URL("https://a.example"), { HTTP_PROXY: "proxy:3128" })?.href,
      "http://proxy:3128/",
    );
    assert.equal(proxyFor(new URL("http://a.example"), { HTTPS_PROXY: "http://p:1" }), undefined);
    assert.throws(
      () => proxyFor(new URL("https://a.example"), { HTTPS_PROXY: "http://[bad" }),
      /is not a URL/,
    );
  });
});

describe("through the emulator's CONNECT proxy", { timeout: 300_000 }, () => {
  let emu: Emulator;
  before(async () => {
    emu = await emulator({ https: true });
  });
  after(async () => {
    await emu?.close();
  });

  it("a service principal token from login.microsoftonline.com via the proxy, trusting the emulator's CA", async () => {
    const ctx = createNodeContext({ env: { ...emu.env }, write: () => {} });
    const t = await acquireForServicePrincipal(ctx, {
      cloud: BUILTIN_CLOUDS[0]!,
      tenant: CONTOSO,
      clientId: SP.clientId,
      credential: { kind: "secret", secret: SP.secret },
      scopes: ["https://management.core.windows.net//.default"],
    });
    assert.equal(t.tenantId, CONTOSO);
    const reqs = await emu.control.requests({ endpoint: "token" });
    assert.ok(reqs.requests.some((r) => r.host.startsWith("login.microsoftonline.com")));
  });

  it("without the CA the TLS check fails; a host the proxy refuses fails; both as fetch failures", async () => {
    const noCa = createNetworkFetch({
      env: { HTTPS_PROXY: emu.env.HTTPS_PROXY },
      extraCaTrustedByNode: false,
    });
    await assert.rejects(
      noCa("https://login.microsoftonline.com/common/discovery/instance"),
      (e: Error) => e instanceof TypeError,
    );
    const withCa = createNetworkFetch({ env: emu.env, extraCaTrustedByNode: false });
    await assert.rejects(withCa("https://example.com/"), (e: Error & { cause?: { message?: string } }) =>
      /refused the tunnel/.test(e.cause?.message ?? ""),
    );
    const ok = await withCa(`${emu.urls.http}/organizations/v2.0/.well-known/openid-configuration`);
    assert.equal(ok.status, 200, "NO_PROXY sends the plain port directly");
  });
});
