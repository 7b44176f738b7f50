/**
 * Generic OpenID sign-in against oidc-provider, a certified OpenID provider nobody here wrote:
 * discovery, authorization code + PKCE in headless Chromium (login and consent pages), the
 * device authorization grant, refresh, and a provider that is down.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { oidcLogin, oidcRefresh } from "../../src/core/flows/oidc.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import { requireTool } from "../helpers/require-tool.js";
import { launchChromium } from "./chromium.js";
import { freePort, testContext } from "./helpers.js";

const CLIENT_ID = "azkeep-cli";

async function startProvider(): Promise<{ issuer: string; server: Server; close(): Promise<void> }> {
  const { default: Provider } = await import("oidc-provider");
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.end();
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: "native",
        token_endpoint_auth_method: "none",
        redirect_uris: ["http://127.0.0.1/"],
        grant_types: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        response_types: ["code"],
      },
    ],
    features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
    scopes: ["openid", "profile", "offline_access"],
    claims: { openid: ["sub"], profile: ["preferred_username", "name"] },
    findAccount: (_ctx: unknown, id: string) =>
      Promise.resolve({
        accountId: id,
        claims: () => Promise.resolve({ sub: id, preferred_username: `${id}@example.test`, name: id }),
      }),
    pkce: { required: () => true },
  });
  provider.on("server_error", (_ctx, e) => console.error("oidc-provider:", e));
  handler = provider.callback();
  return {
    issuer,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

describe("generic OIDC sign-in (oidc-provider)", { timeout: 300_000 }, () => {
  let op: Awaited<ReturnType<typeof startProvider>>;
  before(async () => {
    op = await startProvider();
  });
  after(async () => {
    await op.close();
  });

  it("browser: discovery, login and consent pages in Chromium, PKCE, id token checked, refresh token sealed", async (t) => {
    if (!requireTool(t, "chromium", "apt-get install -y chromium")) return;
    await using browser = await launchChromium();
    const page = await browser.newPage();
    let driving: Promise<void> | undefined;
    const { ctx, out } = testContext({
      // A real opener returns at once; the person then works in the browser.
      open: (url) => {
        driving = (async () => {
          await page.goto(url);
          await page.fill("input[name=login]", "carol");
          await page.fill("input[name=password]", "anything");
          await page.click("button[type=submit]");
          await page.waitForSelector("text=Continue");
          await page.click("button[type=submit]");
        })();
        driving.catch(() => {});
        return Promise.resolve(true);
      },
    });
    const store = createMemoryStore();
    const result = await oidcLogin(ctx, store, {
      issuer: op.issuer,
      clientId: CLIENT_ID,
      timeoutMs: 120_000,
    });
    await driving;
    assert.equal(result.issuer, op.issuer);
    assert.deepEqual(result.user, { name: "carol", type: "user" });
    await page.waitForSelector("#azkeep-result");
    assert.match((await page.textContent("#azkeep-result")) ?? "", /signed in/);
    const secrets = await store.readSecrets();
    assert.equal(secrets.refreshTokens.length, 1);
    const rt = secrets.refreshTokens[0]!;
    assert.equal(rt.cloud, `oidc:${op.issuer}`);
    assert.ok(out.warnings.some((w) => w.includes("A web browser has been opened")));

    const refreshed = await oidcRefresh(ctx, {
      issuer: op.issuer,
      clientId: CLIENT_ID,
      refreshToken: rt.secret,
    });
    assert.ok(refreshed.accessToken.length > 10);
    assert.ok(refreshed.expiresOn > Math.floor(Date.now() / 1000));
  });

  it("device authorization grant: code shown, approved in Chromium", async (t) => {
    if (!requireTool(t, "chromium", "apt-get install -y chromium")) return;
    await using browser = await launchChromium();
    const page = await browser.newPage();
    const { ctx, out } = testContext();
    const store = createMemoryStore();
    const approve = (async () => {
      for (let i = 0; i < 600 && !out.messages.some((m) => m.includes("enter the code")); i++)
        await new Promise((r) => setTimeout(r, 50));
      const m = /open the page (\S+) and enter the code (\S+) /.exec(out.messages.join("\n"));
      assert.ok(m, out.messages.join("\n"));
      await page.goto(m[1]!);
      await page.fill("input[name=user_code]", m[2]!);
      await page.click("button[type=submit]");
      // Confirm the code, sign in, consent: oidc-provider's dev pages, until it says done.
      for (let step = 0; step < 6; step++) {
        await page.waitForLoadState();
        const text = (await page.textContent("body")) ?? "";
        if (/success/i.test(text)) break;
        if (await page.$("input[name=login]")) {
          await page.fill("input[name=login]", "dave");
          await page.fill("input[name=password]", "anything");
        }
        await page.click("button[type=submit]");
      }
    })();
    const result = await oidcLogin(ctx, store, { issuer: op.issuer, clientId: CLIENT_ID, deviceCode: true });
    await approve;
    assert.deepEqual(result.user, { name: "dave", type: "user" });
    assert.equal((await store.readSecrets()).refreshTokens.length, 1);
    assert.ok(
      out.messages.some((m) => /[▄▀█]/.test(m)),
      "a QR code is printed",
    );
  });

  it("a provider that is down: one network error, nothing stored", async () => {
    const port = await freePort();
    const { ctx } = testContext();
    const store = createMemoryStore();
    await assert.rejects(
      oidcLogin(ctx, store, { issuer: `http://127.0.0.1:${port}`, clientId: CLIENT_ID }),
      (e: Error & { code?: string }) =>
        e.code === "network" && /Cannot reach the OpenID provider/.test(e.message),
    );
    assert.deepEqual((await store.readSecrets()).refreshTokens, []);
  });

  it("an authority that is not https (and not loopback) is refused before any request", async () => {
    const { ctx } = testContext();
    await assert.rejects(
      oidcLogin(ctx, createMemoryStore(), { issuer: "http://example.com", clientId: CLIENT_ID }),
      (e: Error & { code?: string }) => e.code === "usage" && /https/.test(e.message),
    );
  });
});
