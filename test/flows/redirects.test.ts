/**
 * The network layer's redirect rule, the redactor and the browser opener's argument vectors,
 * as units: real `node:http` servers on 127.0.0.1 (two ports = two origins) behind the
 * Context's fetch. The end-to-end attacks are in test/rest/leaks.test.ts.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { browserCommands } from "../../src/core/browser-open.js";
import { createNetworkFetch, redirectStep } from "../../src/core/net.js";
import { clearRegisteredSecrets, redact, registerSecret, registerSecrets } from "../../src/core/redact.js";

interface Hit {
  url: string;
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
}

function server(handler: (hit: Hit, res: ServerResponse) => void): Promise<{
  url: string;
  hits: Hit[];
  close(): Promise<void>;
}> {
  const hits: Hit[] = [];
  const s: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const hit = { url: req.url ?? "", method: req.method ?? "", headers: req.headers, body };
      hits.push(hit);
      handler(hit, res);
    });
  });
  return new Promise((resolve) =>
    s.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
        hits,
        close: () => new Promise((r) => s.close(() => r())),
      }),
    ),
  );
}

describe("net: redirects never carry credentials to another origin", () => {
  let capture: Awaited<ReturnType<typeof server>>;
  let origin: Awaited<ReturnType<typeof server>>;
  const f = createNetworkFetch({ env: {}, extraCaTrustedByNode: true });
  before(async () => {
    capture = await server((_h, res) => res.end("captured"));
    origin = await server((h, res) => {
      const to = h.url.slice(1).split("?")[0]!;
      if (to === "final") return void res.end("final");
      const [code, where] = to.split("-") as [string, string];
      const target = where === "same" ? `${origin.url}/final` : `${capture.url}/stolen`;
      res.writeHead(Number(code), { location: target });
      res.end();
    });
  });
  after(async () => {
    await capture?.close();
    await origin?.close();
  });

  const secretHeaders = {
    authorization: "Bearer secret-token-value",
    "x-ms-authorization-auxiliary": "Bearer aux-secret",
    cookie: "session=abc",
    "x-test": "kept",
  };

  it("a 302 to another origin drops Authorization, cookies and auxiliary tokens (and the body)", async () => {
    capture.hits.length = 0;
    const r = await f(`${origin.url}/302-other`, {
      method: "POST",
      headers: secretHeaders,
      body: "client_secret=s3",
    });
    assert.equal(r.status, 200);
    assert.equal(capture.hits.length, 1);
    const h = capture.hits[0]!;
    assert.equal(h.method, "GET");
    assert.equal(h.body, "");
    assert.equal(h.headers.authorization, undefined);
    assert.equal(h.headers["x-ms-authorization-auxiliary"], undefined);
    assert.equal(h.headers.cookie, undefined);
    assert.equal(h.headers["x-test"], "kept");
  });

  it("a 307/308 with a body to another origin is refused: nothing reaches it", async () => {
    capture.hits.length = 0;
    for (const code of [307, 308]) {
      await assert.rejects(
        f(`${origin.url}/${code}-other`, {
          method: "POST",
          headers: secretHeaders,
          body: "client_secret=s3",
        }),
        (e: Error & { cause?: { code?: string; message?: string } }) =>
          e.cause?.code === "EREDIRECT" && /request body to another host/.test(e.cause.message ?? ""),
      );
    }
    assert.equal(capture.hits.length, 0);
  });

  it("a redirect on the same origin keeps the headers", async () => {
    origin.hits.length = 0;
    const r = await f(`${origin.url}/302-same`, { headers: secretHeaders });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "final");
    assert.equal(origin.hits[1]?.headers.authorization, "Bearer secret-token-value");
  });

  it("https → http is never followed; other schemes neither", () => {
    const from = new URL("https://login.example/x");
    assert.throws(
      () => redirectStep(from, "http://login.example/y", 302, "GET", false),
      (e: Error & { cause?: { message?: string } }) => /from https to http/.test(e.cause?.message ?? ""),
    );
    assert.throws(() => redirectStep(from, "file:///etc/passwd", 302, "GET", false), /fetch failed/);
    const ok = redirectStep(from, "https://other.example/z", 303, "POST", true);
    assert.deepEqual([ok.method, ok.keepBody, ok.crossOrigin], ["GET", false, true]);
    const same = redirectStep(from, "/y", 308, "PUT", true);
    assert.deepEqual([same.method, same.keepBody, same.crossOrigin], ["PUT", true, false]);
  });
});

describe("redact", () => {
  after(() => clearRegisteredSecrets());
  it("keeps JSON error codes, redacts OAuth codes in queries and forms", () => {
    const arm =
      '{"error":{"code":"MissingApiVersionParameter","message":"The api-version query parameter (?api-version=) is required"}}';
    assert.equal(redact(arm), arm);
    assert.equal(
      redact("GET http://localhost:8400/?code=0.AXoA-secret-code&state=abc"),
      "GET http://localhost:8400/?code=[REDACTED]&state=abc",
    );
    assert.equal(
      redact("grant_type=authorization_code&code=0.AXoA-secret&code_verifier=vvvv"),
      "grant_type=authorization_code&code=[REDACTED]&code_verifier=[REDACTED]",
    );
    assert.equal(redact('{"device_code":"DAQABAAEAAAA"}'), '{"device_code":"[REDACTED]"}');
  });
  it("redacts secret-bearing query parameters (SAS sig, access_token, client_secret)", () => {
    assert.equal(
      redact("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2030-01-01&sig=abcDEF%2Bghi%3D&sp=r"),
      "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2030-01-01&sig=[REDACTED]&sp=r",
    );
    assert.equal(redact("x?access_token=opaque123&y=1"), "x?access_token=[REDACTED]&y=1");
    assert.equal(
      redact("DefaultEndpointsProtocol=https;AccountKey=abc123==;EndpointSuffix=x"),
      "DefaultEndpointsProtocol=https;AccountKey=[REDACTED];EndpointSuffix=x",
    );
  });
  it("redacts every registered secret, wherever it appears, and its URL-encoded form", () => {
    registerSecret("0.AAAA-opaque-refresh-token/with+chars");
    registerSecrets({ servicePrincipals: [{ credential: { kind: "secret", secret: "sp~secret~value" } }] });
    const body =
      "echo: 0.AAAA-opaque-refresh-token/with+chars and sp~secret~value and 0.AAAA-opaque-refresh-token%2Fwith%2Bchars";
    assert.equal(redact(body), "echo: [REDACTED] and [REDACTED] and [REDACTED]");
    registerSecret("short");
    assert.equal(redact("a short word"), "a short word", "values under 8 characters are not registered");
  });
});

describe("browser opener: the URL is one argument, never a shell string", () => {
  const hostile = `https://login.example/$(touch /tmp/pwned)/x?a=1&b=|calc.exe;"';\`id\`&c=%s`;
  const cases: [NodeJS.Platform, Record<string, string>, string][] = [
    ["win32", {}, "rundll32.exe"],
    ["linux", { WSL_DISTRO_NAME: "Ubuntu" }, "wslview"],
    ["linux", { WSL_INTEROP: "/run/WSL/1_interop" }, "wslview"],
    ["linux", { DISPLAY: ":0" }, "xdg-open"],
    ["darwin", {}, "open"],
  ];
  for (const [platform, env, first] of cases) {
    it(`${platform} ${JSON.stringify(env)}: ${first} with the URL as a whole argument`, () => {
      const cmds = browserCommands(hostile, env, platform);
      assert.ok(cmds.length >= 1);
      assert.equal(cmds[0]![0], first);
      for (const [cmd, args] of cmds) {
        assert.doesNotMatch(
          cmd,
          /^(cmd|cmd\.exe|powershell|powershell\.exe|pwsh|sh|bash)$/i,
          "no interpreter",
        );
        assert.equal(args.at(-1), hostile, `${cmd}: the URL is the last argument, unchanged`);
        assert.equal(args.filter((a) => a.includes("touch")).length, 1);
      }
    });
  }
  it("WSL falls back to rundll32.exe url.dll,FileProtocolHandler", () => {
    assert.deepEqual(browserCommands(hostile, { WSL_DISTRO_NAME: "Ubuntu" }, "linux")[1], [
      "rundll32.exe",
      ["url.dll,FileProtocolHandler", hostile],
    ]);
  });
  it("$BROWSER: %s becomes the URL inside one argument; no display and no BROWSER: nothing", () => {
    assert.deepEqual(browserCommands(hostile, { BROWSER: "firefox --new-tab %s:chromium" }, "linux"), [
      ["firefox", ["--new-tab", hostile]],
      ["chromium", [hostile]],
    ]);
    assert.deepEqual(browserCommands(hostile, {}, "linux"), []);
  });
});
