/**
 * The emulator's transport with a dummy handler: real TLS (the CA must be trusted, or the
 * handshake fails), a real CONNECT proxy driven by undici's ProxyAgent and by raw sockets,
 * refusal of every host it does not cover, CA reuse and file modes.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import fc from "fast-check";
import { ProxyAgent, request as undiciRequest } from "undici";
import { AZURE_HOSTS, CA_KEY_FILE, loadOrCreateCa, matchesHost } from "../../src/emulator/ca.js";
import { requireTool } from "../helpers/require-tool.js";
import { startTransport, type Handler, type Transport } from "../../src/emulator/transport.js";

interface Seen {
  host: string | undefined;
  url: string | undefined;
  encrypted: boolean;
  method: string | undefined;
  body: string;
}

/** Echoes what it was asked, so tests see exactly what reached the handler. */
const echo: Handler = (req, res) => {
  let body = "";
  req.on("data", (d: Buffer) => (body += d.toString()));
  req.on("end", () => {
    const seen: Seen = {
      host: req.headers.host,
      url: req.url,
      encrypted: (req.socket as tls.TLSSocket).encrypted === true,
      method: req.method,
      body,
    };
    const text = JSON.stringify(seen);
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  });
};

const execFileAsync = promisify(execFile);

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "azkeep-transport-"));
}

/** Sends a CONNECT and returns the status line, headers and body of the proxy's answer (or the socket on 200). */
function connect(
  proxyUrl: string,
  target: string,
): Promise<{ status: number; body: string; socket: net.Socket; head: Buffer }> {
  const u = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: Number(u.port), method: "CONNECT", path: target });
    req.on("connect", (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (res.statusCode !== 200) {
        let body = head.toString();
        socket.on("data", (d: Buffer) => (body += d.toString()));
        socket.on("end", () => resolve({ status: res.statusCode ?? 0, body, socket, head }));
        socket.on("error", reject);
        return;
      }
      resolve({ status: 200, body: "", socket, head });
    });
    req.on("error", reject);
    req.end();
  });
}

/** An HTTPS GET over an established tunnel socket, trusting `ca`, with SNI `servername`. */
async function getThroughTunnel(
  socket: net.Socket,
  servername: string,
  ca: string,
  path: string,
): Promise<{ status: number; json: Seen; peer: tls.PeerCertificate }> {
  const tlsSocket = tls.connect({ socket, servername, ca });
  await once(tlsSocket, "secureConnect");
  const peer = tlsSocket.getPeerCertificate();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        createConnection: () => tlsSocket,
        host: servername,
        path,
        method: "GET",
        headers: { Host: servername },
      },
      (res) => {
        let data = "";
        res.on("data", (d: Buffer) => (data += d.toString()));
        res.on("end", () => {
          tlsSocket.destroy();
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(data) as Seen, peer });
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

function httpsGet(url: string, options: https.RequestOptions): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ...options, agent: false }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A plain request to the proxy with an absolute-form target, as HTTP_PROXY clients send. */
function proxyGet(proxyUrl: string, absoluteUrl: string, headers: Record<string, string> = {}) {
  const u = new URL(proxyUrl);
  const target = new URL(absoluteUrl);
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: Number(u.port),
        path: absoluteUrl,
        headers: { Host: target.host, ...headers },
        agent: false,
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("emulator transport", { timeout: 60_000 }, () => {
  let dataDir: string;
  let t: Transport;

  before(async () => {
    dataDir = join(tempDir(), "emulator");
    t = await startTransport({ handler: echo, dataDir });
  });
  after(async () => {
    await t.close();
    rmSync(join(dataDir, ".."), { recursive: true, force: true });
  });

  it("serves the handler over HTTPS on 127.0.0.1 to a client that trusts the CA", async () => {
    assert.match(t.httpsUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(t.proxyUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await httpsGet(`${t.httpsUrl}/hello?x=1`, { ca: t.caCertPem });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.text) as Seen;
    assert.equal(seen.url, "/hello?x=1");
    assert.equal(seen.encrypted, true);
    assert.equal(seen.host, t.httpsUrl.slice("https://".length));
    // "localhost" is covered too.
    const r2 = await httpsGet(`${t.httpsUrl}/x`, { ca: t.caCertPem, servername: "localhost" });
    assert.equal(r2.status, 200);
  });

  it("fails the handshake for a client that does not trust the CA, and keeps serving", async () => {
    await assert.rejects(httpsGet(`${t.httpsUrl}/`, {}), (err: NodeJS.ErrnoException) => {
      assert.match(String(err.code), /SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/);
      return true;
    });
    const r = await httpsGet(`${t.httpsUrl}/again`, { ca: t.caCertPem });
    assert.equal(r.status, 200);
  });

  it("writes the CA where it says, as a PEM certificate authority", () => {
    assert.equal(t.caCertPath, join(dataDir, "ca.pem"));
    const pem = readFileSync(t.caCertPath, "utf8");
    assert.equal(pem, t.caCertPem);
    const cert = new X509Certificate(pem);
    assert.equal(cert.ca, true);
    assert.doesNotMatch(pem, /PRIVATE KEY/);
  });

  it("routes CONNECT to covered Azure hosts into the handler, keeping the Host header (undici ProxyAgent)", async () => {
    const agent = new ProxyAgent({ uri: t.proxyUrl, requestTls: { ca: t.caCertPem } });
    try {
      for (const url of [
        "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration",
        "https://management.azure.com/subscriptions?api-version=2022-12-01",
        "https://login.microsoftonline.us/common/discovery/instance",
        "https://myvault.vault.azure.net/secrets/x",
      ]) {
        const r = await undiciRequest(url, {
          dispatcher: agent,
          method: "POST",
          body: "grant_type=client_credentials",
          headers: { "content-type": "application/x-www-form-urlencoded" },
        });
        assert.equal(r.statusCode, 200, url);
        const seen = (await r.body.json()) as Seen;
        const u = new URL(url);
        assert.equal(seen.host, u.host);
        assert.equal(seen.url, `${u.pathname}${u.search}`);
        assert.equal(seen.method, "POST");
        assert.equal(seen.body, "grant_type=client_credentials");
        assert.equal(seen.encrypted, true);
      }
    } finally {
      await agent.close();
    }
  });

  it("presents a certificate valid for every covered host name", async () => {
    for (const pattern of AZURE_HOSTS) {
      const host = pattern.replace("*.", "anything.");
      const c = await connect(t.proxyUrl, `${host}:443`);
      assert.equal(c.status, 200, host);
      // tls.connect verifies the chain against `ca` and the name against the SAN.
      const r = await getThroughTunnel(c.socket, host, t.caCertPem, "/probe");
      assert.equal(r.status, 200);
      assert.equal(r.json.host, host);
    }
  });

  it(
    "keeps bytes the client sent right after CONNECT (pipelined ClientHello)",
    { timeout: 15_000 },
    async () => {
      const u = new URL(t.proxyUrl);
      const raw = net.connect(Number(u.port), u.hostname);
      await once(raw, "connect");
      // The TLS client writes through `pipe`; the proxy's answer is stripped before TLS sees it.
      let answer = "";
      let buffered = Buffer.alloc(0);
      const pipe = new Duplex({
        write(chunk: Buffer, _enc, cb) {
          raw.write(chunk, cb);
        },
        read() {},
        final(cb) {
          raw.end();
          cb();
        },
      });
      raw.on("data", (d: Buffer) => {
        if (answer) return void pipe.push(d);
        buffered = Buffer.concat([buffered, d]);
        const i = buffered.indexOf("\r\n\r\n");
        if (i < 0) return;
        answer = buffered.subarray(0, i).toString("latin1");
        if (buffered.length > i + 4) pipe.push(buffered.subarray(i + 4));
      });
      raw.on("end", () => pipe.push(null));
      // CONNECT and the ClientHello leave in one write, so they arrive in the same read and
      // the ClientHello is in the `head` the proxy must hand on.
      raw.cork();
      raw.write("CONNECT graph.microsoft.com:443 HTTP/1.1\r\nHost: graph.microsoft.com:443\r\n\r\n");
      const tlsSocket = tls.connect({ socket: pipe, servername: "graph.microsoft.com", ca: t.caCertPem });
      await new Promise((r) => setTimeout(r, 50));
      raw.uncork();
      await once(tlsSocket, "secureConnect");
      assert.match(answer, /^HTTP\/1\.1 200/);
      tlsSocket.write("GET /v1.0/me HTTP/1.1\r\nHost: graph.microsoft.com\r\nConnection: close\r\n\r\n");
      let response = "";
      for await (const chunk of tlsSocket) response += (chunk as Buffer).toString();
      assert.match(response, /^HTTP\/1\.1 200/);
      assert.match(response, /"host":"graph.microsoft.com","url":"\/v1.0\/me"/);
      raw.destroy();
    },
  );

  it("tunnels to its own HTTPS listener for clients that proxy loopback too", async () => {
    const port = new URL(t.httpsUrl).port;
    const c = await connect(t.proxyUrl, `127.0.0.1:${port}`);
    assert.equal(c.status, 200);
    const r = await getThroughTunnel(c.socket, "localhost", t.caCertPem, "/self");
    assert.equal(r.json.url, "/self");
  });

  it("refuses every other CONNECT target with 403 and a clear body, and never dials out", async () => {
    // A local server standing in for "anywhere else": the proxy must never connect to it.
    let dialed = 0;
    const bystander = net.createServer((s) => {
      dialed++;
      s.destroy();
    });
    bystander.listen(0, "127.0.0.1");
    await once(bystander, "listening");
    const bystanderPort = (bystander.address() as net.AddressInfo).port;
    try {
      for (const target of [
        "example.com:443",
        "login.microsoftonline.com.evil.example:443",
        "evilmicrosoftonline.com:443",
        "a.b.vault.azure.net:443",
        "login.microsoftonline.com:8443",
        "management.azure.com:80",
        `127.0.0.1:${bystanderPort}`,
        `localhost:${bystanderPort}`,
        "169.254.169.254:443",
        "login.microsoftonline.com",
        "[::1]:22",
        "no-port-at-all",
      ]) {
        const c = await connect(t.proxyUrl, target);
        assert.equal(c.status, 403, target);
        assert.match(c.body, /refuses .*never connects anywhere else/, target);
      }
      const c = await connect(t.proxyUrl, "example.com:443");
      assert.match(c.body, /refuses example\.com:443/);
    } finally {
      bystander.close();
    }
    assert.equal(dialed, 0);
  });

  it("refuses plain-HTTP proxy requests to other hosts, serves covered ones (IMDS) in origin form", async () => {
    const refused = await proxyGet(t.proxyUrl, "http://example.com/steal?token=x");
    assert.equal(refused.status, 403);
    assert.match(refused.text, /refuses example\.com/);
    assert.doesNotMatch(refused.text, /token=x/);

    const imds = await proxyGet(
      t.proxyUrl,
      "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/",
      { Metadata: "true" },
    );
    assert.equal(imds.status, 200);
    const seen = JSON.parse(imds.text) as Seen;
    assert.equal(seen.host, "169.254.169.254");
    assert.equal(
      seen.url,
      "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/",
    );
    assert.equal(seen.encrypted, false);

    // Not a proxy request at all: an explanation, not the handler.
    const direct = await proxyGet(t.proxyUrl, `${t.proxyUrl}/x`);
    assert.equal(direct.status, 403);
    const origin = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      http
        .get(`${t.proxyUrl}/`, { agent: false }, (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        })
        .on("error", reject);
    });
    assert.equal(origin.status, 400);
    assert.match(origin.text, /HTTPS_PROXY/);
  });

  it("survives clients that reset, send garbage or fail the handshake inside a tunnel", async () => {
    const u = new URL(t.proxyUrl);
    // Reset right after a refused CONNECT, and right after an accepted one.
    for (const target of ["example.com:443", "login.microsoftonline.com:443"]) {
      const raw = net.connect(Number(u.port), u.hostname);
      await once(raw, "connect");
      raw.write(`CONNECT ${target} HTTP/1.1\r\n\r\n`);
      raw.resetAndDestroy();
    }
    // Garbage instead of HTTP.
    const g = net.connect(Number(u.port), u.hostname);
    await once(g, "connect");
    g.resume();
    g.end("\x16\x03\x01 not http at all\r\n\r\n");
    await once(g, "close");
    // A tunnel whose client does not trust the CA.
    const c = await connect(t.proxyUrl, "login.microsoftonline.com:443");
    const bad = tls.connect({ socket: c.socket, servername: "login.microsoftonline.com" });
    const [err] = (await once(bad, "error")) as [Error];
    assert.match(String((err as NodeJS.ErrnoException).code), /SELF_SIGNED|UNABLE/);
    // Garbage inside an accepted tunnel.
    const c2 = await connect(t.proxyUrl, "login.microsoftonline.com:443");
    c2.socket.resume();
    c2.socket.end("GET / HTTP/1.1\r\n\r\n");
    await once(c2.socket, "close");

    await new Promise((r) => setTimeout(r, 100));
    const ok = await httpsGet(`${t.httpsUrl}/still-alive`, { ca: t.caCertPem });
    assert.equal(ok.status, 200);
  });
});

describe("emulator transport: hostile proxy requests (fast-check)", { timeout: 120_000 }, () => {
  let root: string;
  let t: Transport;
  before(async () => {
    root = tempDir();
    t = await startTransport({ handler: echo, dataDir: root });
  });
  after(async () => {
    await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** Sends raw bytes to the proxy; resolves with the status code of its answer (0 = closed without one). */
  async function rawStatus(request: string, untilClose = false): Promise<{ status: number; text: string }> {
    const u = new URL(t.proxyUrl);
    const socket = net.connect(Number(u.port), u.hostname);
    await once(socket, "connect");
    socket.end(Buffer.from(request, "latin1"));
    let text = "";
    socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
    await new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.once("error", () => resolve());
      // An accepted tunnel stays open waiting for a TLS ClientHello: enough once answered.
      const poll = setInterval(() => {
        if (!untilClose && text.includes("\r\n\r\n")) {
          clearInterval(poll);
          socket.destroy();
        }
      }, 5);
      socket.once("close", () => clearInterval(poll));
    });
    return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), text };
  }

  const covered = AZURE_HOSTS.map((h) => h.replace("*.", "kv1."));
  /**
   * What the proxy must accept, written out here rather than computed with the proxy's own
   * `matchesHost` (an expected value from the code under test cannot catch its bug).
   */
  const EXACT = new Set([
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
    "management.azure.com",
    "management.core.windows.net",
    "graph.microsoft.com",
    "graph.windows.net",
    "login.chinacloudapi.cn",
    "management.chinacloudapi.cn",
    "management.core.chinacloudapi.cn",
    "microsoftgraph.chinacloudapi.cn",
    "graph.chinacloudapi.cn",
    "login.microsoftonline.us",
    "login-us.microsoftonline.com",
    "management.usgovcloudapi.net",
    "management.core.usgovcloudapi.net",
    "graph.microsoft.us",
    "graph.usgovcloudapi.net",
  ]);
  /** Key vaults: exactly one non-empty label before the suffix. */
  const VAULTS = [
    /^[a-z0-9-]+\.vault\.azure\.net$/,
    /^[a-z0-9-]+\.vault\.azure\.cn$/,
    /^[a-z0-9-]+\.vault\.usgovcloudapi\.net$/,
  ];
  const isCovered = (host: string, extra: readonly string[] = []): boolean => {
    const h = host.toLowerCase().replace(/\.$/, "");
    return EXACT.has(h) || extra.includes(h) || VAULTS.some((r) => r.test(h));
  };
  const hostArb = fc.oneof(
    fc.constantFrom(...covered),
    fc.constantFrom(...covered).map((h) => h.toUpperCase()),
    fc.tuple(fc.constantFrom(...covered), fc.string({ maxLength: 12 })).map(([h, x]) => `${x}${h}`),
    fc.tuple(fc.constantFrom(...covered), fc.string({ maxLength: 12 })).map(([h, x]) => `${h}${x}`),
    fc.domain(),
    fc.ipV4(),
    fc.ipV6().map((a) => `[${a}]`),
    fc.string({ maxLength: 40 }),
  );
  const portArb = fc.oneof(
    fc.constant("443"),
    fc.constant(""),
    fc.integer({ min: 0, max: 70000 }).map(String),
    fc.string({ maxLength: 6 }),
  );

  it("CONNECT: 200 only for a covered host on port 443; otherwise 400/403; never a crash", async () => {
    await fc.assert(
      fc.asyncProperty(hostArb, portArb, async (hostname, port) => {
        const target = port === "" ? hostname : `${hostname}:${port}`;
        const r = await rawStatus(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
        // Spaces between the method and the target belong to the request line, not to the
        // target (Node's parser skips them, as RFC 9112 §3 lets a lenient parser): " host" is host.
        const named = hostname.replace(/^ +/, "");
        const shouldAccept = /^[A-Za-z0-9.-]+$/.test(named) && port === "443" && isCovered(named);
        if (shouldAccept) assert.equal(r.status, 200, target);
        else {
          assert.ok(r.status === 400 || r.status === 403, `${JSON.stringify(target)} → ${r.status}`);
          // Nothing the client sent comes back as a header line of the answer.
          assert.doesNotMatch(r.text.split("\r\n\r\n")[0] ?? "", /\r\n[^\r\n]*(injected|Set-Cookie)/i);
        }
      }),
      { numRuns: 400 },
    );
    const ok = await httpsGet(`${t.httpsUrl}/alive`, { ca: t.caCertPem });
    assert.equal(ok.status, 200);
  });

  it("absolute-URI requests: only covered hosts reach the handler; others 400/403", async () => {
    await fc.assert(
      fc.asyncProperty(hostArb, fc.webPath(), async (hostname, path) => {
        const r = await rawStatus(
          `GET http://${hostname}${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`,
          true,
        );
        if (r.status === 200) {
          const body = r.text.slice(r.text.indexOf("\r\n\r\n") + 4);
          const seen = JSON.parse(body) as Seen;
          assert.equal(seen.encrypted, false);
          assert.ok(isCovered(new URL(`http://${hostname}`).hostname, ["169.254.169.254"]), hostname);
        } else assert.ok(r.status === 400 || r.status === 403, `${JSON.stringify(hostname)} → ${r.status}`);
      }),
      { numRuns: 300 },
    );
  });

  it("header injection through the CONNECT target is not reflected", async () => {
    const r = await rawStatus("CONNECT evil.example:443\r\nSet-Cookie: injected=1 HTTP/1.1\r\n\r\n");
    assert.ok(r.status === 400 || r.status === 403);
    assert.doesNotMatch(r.text, /^Set-Cookie/im);
  });
});

describe("emulator transport: CA files and lifecycle", { timeout: 60_000 }, () => {
  it("creates the CA once with 0700/0600 modes regardless of umask, and reuses it across restarts", async () => {
    const root = tempDir();
    const dataDir = join(root, "emulator");
    const oldUmask = process.umask(0o000);
    let first: Transport | undefined;
    try {
      first = await startTransport({ handler: echo, dataDir });
    } finally {
      process.umask(oldUmask);
    }
    try {
      assert.equal(statSync(dataDir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dataDir, CA_KEY_FILE)).mode & 0o777, 0o600);
      assert.equal(statSync(first.caCertPath).mode & 0o777, 0o644);
      const key = readFileSync(join(dataDir, CA_KEY_FILE), "utf8");
      assert.match(key, /BEGIN PRIVATE KEY/);
      const firstPem = first.caCertPem;
      const firstPort = new URL(first.httpsUrl).port;
      await first.close();
      // The port is free again after close().
      const probe = net.createServer().listen(Number(firstPort), "127.0.0.1");
      await once(probe, "listening");
      probe.close();

      // Somebody loosened the key file and removed ca.pem: the next start repairs both.
      chmodSync(join(dataDir, CA_KEY_FILE), 0o644);
      rmSync(first.caCertPath);
      const second = await startTransport({ handler: echo, dataDir });
      try {
        assert.equal(second.caCertPem, firstPem, "same CA after restart");
        assert.equal(readFileSync(second.caCertPath, "utf8"), firstPem);
        assert.equal(statSync(join(dataDir, CA_KEY_FILE)).mode & 0o777, 0o600);
        assert.equal(readFileSync(join(dataDir, CA_KEY_FILE), "utf8"), key);
        // A client that trusted the first CA trusts the restarted emulator.
        const r = await httpsGet(`${second.httpsUrl}/`, { ca: firstPem });
        assert.equal(r.status, 200);
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("a CA about to expire is set aside and replaced", async () => {
    const root = tempDir();
    try {
      // A CA made ten years minus ten days ago expires in ten days: inside the renewal window.
      const old = await loadOrCreateCa(root, new Date(Date.now() - (10 * 365 - 10) * 86_400_000));
      const tr = await startTransport({ handler: echo, dataDir: root });
      try {
        assert.notEqual(tr.caCertPem, old.certPem);
        assert.ok(readdirSync(root).some((f) => /^ca-key\.pem\.expired-\d{4}-\d\d-\d\d$/.test(f)));
        const r = await httpsGet(`${tr.httpsUrl}/`, { ca: tr.caCertPem });
        assert.equal(r.status, 200);
      } finally {
        await tr.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("the certificates pass OpenSSL's strict X.509 checks (Python ssl, as the Azure CLI uses)", async (t) => {
    if (!requireTool(t, "python3", "apt-get install -y python3")) return;
    const root = tempDir();
    const tr = await startTransport({ handler: echo, dataDir: root });
    try {
      const port = new URL(tr.httpsUrl).port;
      const script = [
        "import socket, ssl, sys",
        "ctx = ssl.create_default_context(cafile=sys.argv[1])",
        "ctx.verify_flags |= ssl.VERIFY_X509_STRICT",
        "for name in sys.argv[3:]:",
        "    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[2]))), server_hostname=name)",
        "    s.close()",
        "print('ok')",
      ].join("\n");
      // Asynchronously: the server answering the handshakes lives in this process.
      const r = await execFileAsync(
        "python3",
        ["-c", script, tr.caCertPath, port, "login.microsoftonline.com", "management.azure.com", "localhost"],
        { encoding: "utf8", timeout: 60_000 },
      );
      assert.equal(r.stdout.trim(), "ok");
    } finally {
      await tr.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("two emulators starting at once on a fresh folder end up with one CA", async () => {
    const root = tempDir();
    const dataDir = join(root, "emulator");
    try {
      const [a, b] = await Promise.all([
        startTransport({ handler: echo, dataDir }),
        startTransport({ handler: echo, dataDir }),
      ]);
      try {
        assert.equal(a.caCertPem, b.caCertPem);
        for (const x of [a, b]) {
          const r = await httpsGet(`${x.httpsUrl}/`, { ca: a.caCertPem });
          assert.equal(r.status, 200);
        }
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("a damaged CA key file is one clear error naming the file and the fix", async () => {
    const root = tempDir();
    try {
      writeFileSync(
        join(root, CA_KEY_FILE),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        {
          mode: 0o600,
        },
      );
      await assert.rejects(startTransport({ handler: echo, dataDir: root }), (err: Error) => {
        assert.match(err.message, /emulator's CA in .*ca-key\.pem is damaged/);
        assert.match(err.message, /Delete .*ca-key\.pem and .*ca\.pem to create a new one/);
        return true;
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("a handler that throws, or an async handler that rejects, gives an Entra-style 500, not a crash", async () => {
    const root = tempDir();
    const handler = ((req: http.IncomingMessage) => {
      if (req.url === "/sync") throw new Error("sync bug");
      return Promise.reject(new Error("async bug"));
    }) as unknown as Handler;
    const tr = await startTransport({ handler, dataDir: root });
    try {
      for (const path of ["/sync", "/async"]) {
        const r = await httpsGet(`${tr.httpsUrl}${path}`, { ca: tr.caCertPem });
        assert.equal(r.status, 500);
        const body = JSON.parse(r.text) as { error: string; error_description: string };
        assert.equal(body.error, "server_error");
        assert.match(body.error_description, /^AADSTS\d+:/);
        assert.doesNotMatch(r.text, /bug|\n\s+at /);
      }
    } finally {
      await tr.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("close() ends open keep-alive tunnels promptly", async () => {
    const root = tempDir();
    const tr = await startTransport({ handler: echo, dataDir: root });
    try {
      const c = await connect(tr.proxyUrl, "login.microsoftonline.com:443");
      const tlsSocket = tls.connect({
        socket: c.socket,
        servername: "login.microsoftonline.com",
        ca: tr.caCertPem,
      });
      await once(tlsSocket, "secureConnect");
      const closed = once(tlsSocket, "close");
      const started = Date.now();
      await tr.close();
      await closed;
      assert.ok(Date.now() - started < 5_000);
    } finally {
      await tr.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("port options bind the given ports; a taken port is a clear error", async () => {
    const root = tempDir();
    const blocker = net.createServer().listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startTransport({ handler: echo, dataDir: root, proxyPort: taken }), /EADDRINUSE/);
      await assert.rejects(startTransport({ handler: echo, dataDir: root, httpsPort: taken }), /EADDRINUSE/);
    } finally {
      blocker.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("matchesHost", () => {
  const cases: [string, boolean][] = [
    ["login.microsoftonline.com", true],
    ["LOGIN.MicrosoftOnline.com", true],
    ["login.microsoftonline.com.", true],
    ["xlogin.microsoftonline.com", false],
    ["login.microsoftonline.com.evil", false],
    ["kv1.vault.azure.net", true],
    ["a.kv1.vault.azure.net", false],
    ["$kv1.vault.azure.net", false],
    ["kv_1.vault.azure.net", false],
    ["vault.azure.net", false],
    [".vault.azure.net", false],
    ["example.com", false],
  ];
  for (const [host, expected] of cases) {
    it(`${host} → ${expected}`, () => assert.equal(matchesHost(host, AZURE_HOSTS), expected));
  }
});
