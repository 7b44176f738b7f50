/**
 * Issue 12 item 11: a generic OpenID sign-in is usable. The built bin/azkeep.js signs in to
 * oidc-provider (a certified provider nobody here wrote) with the device grant, approved in
 * headless Chromium; then `account get-access-token --authority` serves the cached token and
 * `--force-refresh` redeems the refresh token through openid-client; `rest --authority` sends
 * the token only to the host named in --url (a capture server on 127.0.0.1 checks that a
 * redirect elsewhere carries none), never over plain http off this machine.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { BIN, runCli, tempHome } from "../helpers/cli.js";
import { requireTool } from "../helpers/require-tool.js";
import { launchChromium } from "./chromium.js";

const CLIENT_ID = "azkeep-cli";

async function startProvider(): Promise<{ issuer: string; close(): Promise<void> }> {
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
  handler = provider.callback();
  return {
    issuer,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

interface Hit {
  url: string;
  headers: IncomingHttpHeaders;
}

describe(
  "a generic OpenID sign-in serves get-access-token and rest (e2e, oidc-provider)",
  { timeout: 300_000 },
  () => {
    let op: Awaited<ReturnType<typeof startProvider>>;
    const hits: Hit[] = [];
    let api: Server;
    let capture: Server;
    let apiUrl = "";
    let captureUrl = "";
    const home = tempHome();
    const env = { ...home.env, AZKEEP_STORE_PROVIDER: "insecure-file", NO_COLOR: "1" };
    const cli = (args: string[], extra: Record<string, string> = {}) =>
      runCli(args, { env: { ...env, ...extra }, timeoutMs: 60_000 });

    before(async () => {
      op = await startProvider();
      api = createServer((req, res) => {
        hits.push({ url: `${req.headers.host}${req.url}`, headers: req.headers });
        if (req.url === "/moved") {
          res.writeHead(302, { location: `${captureUrl}/stolen` });
          return void res.end();
        }
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ me: "ok" }));
      });
      await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
      apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
      // Another origin on the same machine (another port).
      capture = createServer((req, res) => {
        hits.push({ url: `${req.headers.host}${req.url}`, headers: req.headers });
        res.end("{}");
      });
      await new Promise<void>((r) => capture.listen(0, "127.0.0.1", r));
      captureUrl = `http://127.0.0.1:${(capture.address() as AddressInfo).port}`;
    });
    after(async () => {
      await new Promise((r) => api?.close(r));
      await new Promise((r) => capture?.close(r));
      await op?.close();
      home[Symbol.dispose]();
    });

    it("login --authority (device grant, approved in Chromium), then get-access-token, --force-refresh and rest use it", async (t) => {
      if (!requireTool(t, "chromium", "apt-get install -y chromium")) return;
      // Before: no sign-in, a clear error.
      const none = await cli(["account", "get-access-token", "--authority", op.issuer]);
      assert.equal(none.code, 1, none.stderr);
      assert.match(none.stderr, /^ERROR: No sign-in to the OpenID provider .* is stored/m);
      assert.match(none.stderr, /azkeep login --authority/);

      await using browser = await launchChromium();
      const page = await browser.newPage();
      const child = spawn(
        process.execPath,
        [BIN, "login", "--authority", op.issuer, "--client-id", CLIENT_ID, "--use-device-code"],
        { env: { ...process.env, ...env }, detached: true },
      );
      let stderr = "";
      let stdout = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stdin.end();
      const exited = new Promise<number | null>((r) => child.on("close", r));
      try {
        let m: RegExpExecArray | null = null;
        for (let i = 0; i < 600 && !m; i++) {
          m = /open the page (\S+) and enter the code (\S+) /.exec(stderr);
          if (!m) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(m, stderr);
        await page.goto(m[1]!);
        await page.fill("input[name=user_code]", m[2]!);
        await page.click("button[type=submit]");
        for (let step = 0; step < 6; step++) {
          await page.waitForLoadState();
          if (/success/i.test((await page.textContent("body")) ?? "")) break;
          if (await page.$("input[name=login]")) {
            await page.fill("input[name=login]", "erin");
            await page.fill("input[name=password]", "anything");
          }
          await page.click("button[type=submit]");
        }
        assert.equal(await exited, 0, stderr);
      } finally {
        if (child.exitCode === null && child.pid) process.kill(-child.pid, "SIGKILL");
      }
      assert.equal((JSON.parse(stdout) as { user: { name: string } }).user.name, "erin");

      const get = async (...extra: string[]) => {
        const r = await cli(["account", "get-access-token", "--authority", op.issuer, ...extra]);
        assert.equal(r.code, 0, r.stderr);
        return JSON.parse(r.stdout) as {
          accessToken: string;
          tenant: string;
          expires_on: number;
          tokenType: string;
        };
      };
      const cached = await get();
      assert.equal(cached.tenant, op.issuer);
      assert.equal(cached.tokenType, "Bearer");
      assert.ok(cached.expires_on > Date.now() / 1000);
      assert.equal((await get()).accessToken, cached.accessToken, "served from the cache");
      const refreshed = await get("--force-refresh", "--client-id", CLIENT_ID);
      assert.notEqual(refreshed.accessToken, cached.accessToken, "a refresh through openid-client");
      assert.equal(
        (await get()).accessToken,
        refreshed.accessToken,
        "the refreshed token replaced the cached one",
      );
      // The fast lane's global-flag-first route too.
      const fast = await cli([
        "-o",
        "tsv",
        "account",
        "get-access-token",
        "--authority",
        `${op.issuer}/`,
        "--query",
        "accessToken",
      ]);
      assert.equal(fast.code, 0, fast.stderr);
      assert.equal(fast.stdout.trim(), refreshed.accessToken);

      // rest: the token goes to the host named in --url, not across a redirect.
      hits.length = 0;
      const ok = await cli(["rest", "--authority", op.issuer, "--url", `${apiUrl}/me`]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(JSON.parse(ok.stdout), { me: "ok" });
      assert.equal(hits[0]!.headers.authorization, `Bearer ${refreshed.accessToken}`);
      hits.length = 0;
      const moved = await cli(["rest", "--authority", op.issuer, "--url", `${apiUrl}/moved`]);
      assert.equal(moved.code, 0, moved.stderr);
      assert.equal(hits.length, 2);
      assert.equal(
        hits[1]!.headers.authorization,
        undefined,
        "no token after the redirect to another origin",
      );
      hits.length = 0;
      const plain = await cli(["rest", "--authority", op.issuer, "--url", "http://api.example.test/me"], {
        HTTP_PROXY: captureUrl,
        http_proxy: captureUrl,
      });
      assert.equal(plain.code, 1, plain.stderr);
      assert.match(plain.stderr, /the URL is plain http/);
      const path = await cli(["rest", "--authority", op.issuer, "--url", "/subscriptions"]);
      assert.equal(path.code, 2, path.stderr);
      assert.match(path.stderr, /--authority needs an absolute --url/);
      const mixed = await cli([
        "account",
        "get-access-token",
        "--authority",
        op.issuer,
        "--resource",
        "https://x",
      ]);
      assert.equal(mixed.code, 2, mixed.stderr);
      assert.equal(hits.length, 0);
    });
  },
);
