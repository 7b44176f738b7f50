/**
 * The control API (which can approve a device code as anyone, mint federated tokens and reset
 * the world) answers only the holder of the run's token, on the plain listener's own Host, and
 * never a web page: the attacks as found — another local user, a DNS-rebinding Host, a
 * cross-origin `text/plain` POST, the same path through the proxy — each fail and change nothing.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EmulatorControl, type Emulator } from "../../src/emulator/index.js";
import { canSwitchUser, runAsOtherUser } from "../helpers/other-user.js";
import { emulator } from "./helpers.js";

interface Raw {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A request with exactly these headers (fetch would not let a test set `Host`). */
function raw(url: string, method: string, headers: Record<string, string>, body = ""): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method, headers, setHost: false },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("the emulator's control API refuses everyone but the token holder", { timeout: 120_000 }, () => {
  let emu: Emulator;
  let host: string;
  let bearer: Record<string, string>;
  before(async () => {
    emu = await emulator();
    host = new URL(emu.urls.http).host;
    bearer = { authorization: `Bearer ${emu.controlToken}` };
  });
  after(async () => {
    await emu?.close();
  });

  const fault = JSON.stringify({ endpoint: "token", type: "status", status: 503 });
  const noFaultsLeft = async () => {
    const r = await raw(`${emu.urls.control}/faults`, "GET", { host, ...bearer });
    assert.deepEqual(JSON.parse(r.body), { faults: [] }, "nothing was changed");
  };

  it("the token is per run, long and random; the JS client sends it", async () => {
    assert.ok(emu.controlToken.length >= 32);
    await using other = await emulator();
    assert.notEqual(other.controlToken, emu.controlToken);
    assert.equal((await emu.control.info()).name, "azkeep emulator");
  });

  it("no token, a wrong token, another emulator's token, a token in the query: 401, nothing done", async () => {
    await using other = await emulator();
    for (const headers of [
      {},
      { authorization: "Bearer nope" },
      { authorization: `Basic ${Buffer.from(`x:${emu.controlToken}`).toString("base64")}` },
      { authorization: `Bearer ${other.controlToken}` },
      { authorization: `Bearer ${emu.controlToken}x` },
    ]) {
      const r = await raw(
        `${emu.urls.control}/faults`,
        "POST",
        { host, "content-type": "application/json", ...headers },
        fault,
      );
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.match(String(r.headers["www-authenticate"]), /^Bearer realm="azkeep-emulator-control"/);
      assert.match(JSON.parse(r.body).message as string, /control token/);
    }
    const q = await raw(`${emu.urls.control}/reset?token=${emu.controlToken}`, "POST", { host });
    assert.equal(q.status, 401);
    await assert.rejects(new EmulatorControl(emu.urls.http, "wrong-token-0123456789").reset(), /\(401\)/);
    await noFaultsLeft();
  });

  it("another local user (a second uid) cannot drive it", async (t) => {
    if (!canSwitchUser(t)) return;
    const script = `
      const u = process.argv[1];
      const r = await fetch(u + "/faults", { method: "POST", headers: { "content-type": "text/plain" }, body: process.argv[2] });
      const a = await fetch(u + "/device-codes");
      console.log(JSON.stringify([r.status, a.status]));`;
    const r = await runAsOtherUser(
      process.execPath,
      ["--input-type=module", "-e", script, emu.urls.control, fault],
      {
        nproc: 40,
        timeoutMs: 30_000,
        env: { PATH: "/usr/bin:/bin", HOME: "/" },
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [401, 401]);
    await noFaultsLeft();
  });

  it("a Host other than the listener's (DNS rebinding): 403 even with the token", async () => {
    const port = new URL(emu.urls.http).port;
    for (const h of [
      "attacker.example",
      `attacker.example:${port}`,
      `127.0.0.1:1`,
      "",
      `login.microsoftonline.com`,
    ]) {
      const r = await raw(
        `${emu.urls.control}/faults`,
        "POST",
        { host: h, "content-type": "application/json", ...bearer },
        fault,
      );
      assert.equal(r.status, 403, `Host '${h}'`);
    }
    const alias = await raw(`${emu.urls.control}/faults`, "GET", { host: `localhost:${port}`, ...bearer });
    assert.equal(alias.status, 200, "localhost:PORT names the same listener");
    await noFaultsLeft();
  });

  it("cross-origin requests from a web page: 403 even with the token; a text/plain POST does nothing", async () => {
    for (const extra of [
      { origin: "http://attacker.example" },
      { origin: "null" },
      { origin: `http://${host}.attacker.example` },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
    ]) {
      const r = await raw(
        `${emu.urls.control}/faults`,
        "POST",
        { host, "content-type": "text/plain", ...bearer, ...extra },
        fault,
      );
      assert.equal(r.status, 403, JSON.stringify(extra));
      assert.equal(r.headers["access-control-allow-origin"], undefined);
    }
    const preflight = await raw(`${emu.urls.control}/faults`, "OPTIONS", {
      host,
      origin: "http://attacker.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization",
    });
    assert.equal(preflight.status, 403);
    assert.equal(preflight.headers["access-control-allow-origin"], undefined);
    const same = await raw(`${emu.urls.control}/faults`, "GET", {
      host,
      origin: `http://${host}`,
      "sec-fetch-site": "same-origin",
      ...bearer,
    });
    assert.equal(same.status, 200);
    await noFaultsLeft();
  });

  it("the same path through the HTTPS listener or the proxy's Host: 403", async () => {
    const dir = mkdtempSync(join(tmpdir(), "azkeep-control-"));
    try {
      await using tls = await emulator({ https: true, dataDir: dir });
      const { request: httpsRequest } = await import("node:https");
      const status = await new Promise<number>((resolve, reject) => {
        const u = new URL(`${tls.urls.https!}/_emulator/faults`);
        const req = httpsRequest(
          {
            host: u.hostname,
            port: u.port,
            path: u.pathname,
            method: "GET",
            ca: undefined,
            rejectUnauthorized: false,
            headers: { authorization: `Bearer ${tls.controlToken}`, host: new URL(tls.urls.http).host },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
      assert.equal(status, 403, "not on the HTTPS listener, whatever the Host");
      assert.equal((await tls.control.info()).name, "azkeep emulator", "the plain listener still answers");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
