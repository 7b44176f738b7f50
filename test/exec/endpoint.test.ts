/**
 * The exec endpoint's wire contracts and refusals, over real loopback HTTP, with a backend that
 * hands out a fixed token. The caller is this test process, which is the endpoint's "child"
 * (root pid) unless a test says otherwise. The real clients run in exec.test.ts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { request } from "node:http";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  format2017ExpiresOn,
  normalizeAudience,
  startEndpoint,
  type Endpoint,
} from "../../src/exec/endpoint.js";
import { identifyPeer } from "../../src/exec/peer.js";

const TOKEN = "eyJhbGciOiJub25lIn0.eyJhcHBpZCI6ImFwcC0xIn0.c2ln"; // {"appid":"app-1"}
const NOW = 1_800_000_000_000;

function get(
  url: string,
  headers: Record<string, string> = {},
  method = "GET",
  body?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, timeout: 10_000, agent: false }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Bytes exactly as Go's net/http writes go-azure-sdk's GET (header order and all). */
function rawGo(port: number, path: string, extra: string[] = []): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let data = "";
    s.on("data", (d: Buffer) => (data += d.toString()));
    s.on("end", () => {
      const [head, ...rest] = data.split("\r\n\r\n");
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head ?? "")?.[1]), body: rest.join("\r\n\r\n") });
    });
    s.on("error", reject);
    s.write(
      [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        "User-Agent: Go-http-client/1.1",
        "Metadata: true",
        ...extra,
        "Accept-Encoding: gzip",
        "Connection: close",
        "",
        "",
      ].join("\r\n"),
    );
  });
}

describe("exec endpoint: contracts and refusals", () => {
  let ep: Endpoint;
  let root: number | undefined = process.pid;
  const lines: string[] = [];
  const asked: string[] = [];
  before(async () => {
    ep = await startEndpoint({
      backend: {
        token: (resource) => {
          asked.push(resource);
          return Promise.resolve({ accessToken: TOKEN, tokenType: "Bearer", expiresOn: NOW / 1000 + 3600 });
        },
      },
      view: { account: { id: "sub-1" }, tenant: "tid-1", subscription: "sub-1", resources: {} },
      allowScopes: ["https://management.azure.com/.default", "https://vault.azure.net"],
      log: (l) => lines.push(l),
      rootPid: () => root,
      now: () => NOW,
    });
  });
  after(async () => {
    await ep?.close();
  });
  const lastLine = () => lines[lines.length - 1] ?? "";

  it("App Service 2019-08-01: X-IDENTITY-HEADER, the superset with numbers as strings", async () => {
    const r = await get(
      `${ep.env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com`,
      {
        "X-IDENTITY-HEADER": ep.env.IDENTITY_HEADER!,
      },
    );
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      access_token: TOKEN,
      expires_in: "3600",
      expires_on: String(NOW / 1000 + 3600),
      ext_expires_in: "3600",
      not_before: String(NOW / 1000),
      resource: "https://management.azure.com",
      token_type: "Bearer",
      client_id: "app-1",
    });
    assert.match(
      lastLine(),
      new RegExp(
        `pid=${process.pid} exe=\\S+ route=app-service audience=https://management.azure.com outcome=ok status=200`,
      ),
    );
    assert.ok(
      !lines.join("\n").includes(TOKEN) && !lines.join("\n").includes(ep.secret),
      "no token or secret in the log",
    );
  });

  it("App Service 2017-09-01: header `secret`, expires_on as the App Service date", async () => {
    const r = await get(
      `${ep.env.MSI_ENDPOINT}/?resource=https://management.core.windows.net/&api-version=2017-09-01`,
      {
        secret: ep.env.MSI_SECRET!,
      },
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.expires_on, format2017ExpiresOn(NOW / 1000 + 3600));
    assert.match(String(r.body.expires_on), /^\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d \+00:00$/);
    assert.equal(asked[asked.length - 1], "https://management.core.windows.net/");
  });

  it("msrestazure's Cloud Shell form (az 2.45 without App Service): POST resource=… to MSI_ENDPOINT", async () => {
    const r = await get(
      ep.env.MSI_ENDPOINT!,
      { Metadata: "true", "Content-Type": "application/x-www-form-urlencoded" },
      "POST",
      "resource=https%3A%2F%2Fmanagement.core.windows.net%2F",
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.expires_on, String(NOW / 1000 + 3600));
  });

  it("go-azure-sdk: `ARM_MSI_ENDPOINT + ? + query`, Metadata only; expires_in present (it renews by it)", async () => {
    const u = new URL(ep.env.ARM_MSI_ENDPOINT!);
    const q = new URLSearchParams({ "api-version": "2018-02-01", resource: "https://management.azure.com/" });
    const r = await rawGo(ep.port, `${u.pathname}?${q.toString()}`);
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as { expires_in: string }).expires_in, "3600");
    // newer go-azure-sdk: MSI_ENDPOINT with 2019-08-01 and x-ms-identity: IDENTITY_HEADER
    const m = new URL(ep.env.MSI_ENDPOINT!);
    const q2 = new URLSearchParams({
      "api-version": "2019-08-01",
      resource: "https://management.azure.com/",
    });
    const r2 = await rawGo(ep.port, `${m.pathname}?${q2.toString()}`, [
      `X-Ms-Identity: ${ep.env.IDENTITY_HEADER}`,
    ]);
    assert.equal(r2.status, 200, r2.body);
  });

  const refusals: [
    string,
    () => Promise<{ status: number; body: Record<string, unknown> }>,
    number,
    RegExp,
  ][] = [
    [
      "no secret",
      () => get(`${ep.origin}/msi/token?api-version=2019-08-01&resource=https://management.azure.com`),
      403,
      /No secret/,
    ],
    [
      "a wrong secret",
      () =>
        get(`${ep.env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com`, {
          "X-IDENTITY-HEADER": "0".repeat(64),
        }),
      403,
      /Wrong secret/,
    ],
    [
      "a wrong secret in the path",
      () =>
        get(
          `${ep.origin}/${"a".repeat(64)}/metadata/identity/oauth2/token?resource=https://management.azure.com`,
          { Metadata: "true" },
        ),
      403,
      /Wrong secret/,
    ],
    [
      "a right path secret with a wrong header",
      () => get(`${ep.env.MSI_ENDPOINT}?resource=https://management.azure.com`, { secret: "nope" }),
      403,
      /Wrong secret/,
    ],
    [
      "another Host (DNS rebinding)",
      () =>
        get(`${ep.env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com`, {
          "X-IDENTITY-HEADER": ep.secret,
          Host: `evil.example:${ep.port}`,
        }),
      403,
      /Host/,
    ],
    [
      "localhost as Host",
      () =>
        get(`${ep.env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com`, {
          "X-IDENTITY-HEADER": ep.secret,
          Host: `localhost:${ep.port}`,
        }),
      403,
      /Host/,
    ],
    [
      "an audience outside --allow-scope",
      () =>
        get(`${ep.env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://graph.microsoft.com`, {
          "X-IDENTITY-HEADER": ep.secret,
        }),
      403,
      /allow-scope/,
    ],
    [
      "IMDS form without Metadata: true (SSRF)",
      () => get(`${ep.env.ARM_MSI_ENDPOINT}?resource=https://management.azure.com`),
      400,
      /metadata header/,
    ],
    [
      "a user-assigned identity asked by client_id",
      () =>
        get(
          `${ep.env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com&client_id=x`,
          { "X-IDENTITY-HEADER": ep.secret },
        ),
      400,
      /client_id/,
    ],
    [
      "no resource",
      () => get(`${ep.env.IDENTITY_ENDPOINT}?api-version=2019-08-01`, { "X-IDENTITY-HEADER": ep.secret }),
      400,
      /resource/,
    ],
    [
      "an unknown path (400, not a retried 404)",
      () => get(`${ep.env.AZKEEP_EXEC_ENDPOINT}/nothing`),
      400,
      /Unknown path/,
    ],
  ];
  for (const [what, call, status, why] of refusals) {
    it(`refuses ${what}: ${status}, both error shapes, one log line`, async () => {
      const n = lines.length;
      const r = await call();
      assert.equal(r.status, status);
      assert.equal(r.body.statusCode, status);
      assert.match(String(r.body.message), why);
      assert.match(String(r.body.error_description), why);
      assert.ok(typeof r.body.error === "string");
      assert.equal(r.body.access_token, undefined);
      assert.equal(lines.length, n + 1);
      assert.match(lastLine(), new RegExp(`pid=${process.pid} .*outcome=refused status=${status} reason=`));
    });
  }

  it("refuses a caller that is not a descendant of the run's child", async () => {
    const outsider = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      await new Promise((r) => outsider.once("spawn", r));
      root = outsider.pid; // the "child" is now another process; this test process is outside it
      const r = await get(
        `${ep.env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com`,
        {
          "X-IDENTITY-HEADER": ep.secret,
        },
      );
      assert.equal(r.status, 403);
      assert.match(String(r.body.message), /not a process of this azkeep exec run/);
      assert.match(
        lastLine(),
        new RegExp(`pid=${process.pid} exe=\\S*node\\S* .*outcome=refused status=403`),
      );
    } finally {
      root = process.pid;
      outsider.kill("SIGKILL");
    }
  });

  it("normalizes audiences: /.default, trailing slashes, case, ARM's two names", () => {
    const table: [string, string][] = [
      ["https://management.azure.com/.default", "https://management.azure.com"],
      ["https://management.core.windows.net/", "https://management.azure.com"],
      ["https://management.core.windows.net//.default", "https://management.azure.com"],
      ["HTTPS://Vault.Azure.Net/", "https://vault.azure.net"],
      ["https://graph.microsoft.com", "https://graph.microsoft.com"],
    ];
    for (const [i, o] of table) assert.equal(normalizeAudience(i), o, i);
  });
});

describe("exec peer lookup (/proc)", () => {
  it("finds the process on the client side of a loopback connection, and its ancestry", async () => {
    const { createServer } = await import("node:net");
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const accepted = new Promise<number>((r) => server.once("connection", (s) => r(s.remotePort!)));
    const c = connect(port, "127.0.0.1");
    try {
      const clientPort = await accepted;
      const me = await identifyPeer(clientPort, port, process.pid);
      assert.equal(me.pid, process.pid);
      assert.equal(me.descendant, true);
      const parent = await identifyPeer(clientPort, port, process.ppid);
      assert.equal(parent.descendant, true, "the parent's descendants include this process");
      const other = await identifyPeer(clientPort, port, 1 === process.pid ? 2 : 999_999_999);
      assert.equal(other.pid, process.pid);
      assert.equal(other.descendant, false);
    } finally {
      c.destroy();
      server.close();
    }
  });
});
