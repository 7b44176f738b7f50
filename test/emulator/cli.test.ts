import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BIN, runCli } from "../helpers/cli.js";

interface Started extends AsyncDisposable {
  stdout: string;
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }>;
}

/**
 * Spawns `azkeep emulator start …` and resolves once `ready(stdout)` holds. Disposing it (`await
 * using`) kills the emulator when the test did not stop it, an assertion having failed first.
 */
function start(
  args: string[],
  env: Record<string, string>,
  ready: (out: string) => boolean,
): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "emulator", "start", ...args], {
      env: { ...process.env, NO_COLOR: "1", ...env },
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`emulator start did not become ready: ${stderr}`));
    }, 60_000);
    let running = true;
    const exited = new Promise<number | null>((r) =>
      child.on("close", (code) => {
        running = false;
        r(code);
      }),
    );
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (ready(stdout)) {
        clearTimeout(timer);
        resolve({
          stdout,
          async stop(signal) {
            child.kill(signal);
            return { code: await exited, stderr };
          },
          async [Symbol.asyncDispose]() {
            if (!running) return;
            child.kill("SIGKILL");
            await exited;
          },
        });
      }
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`emulator start exited (${code}): ${stderr}`));
    });
  });
}

function completeJson(out: string): boolean {
  try {
    JSON.parse(out);
    return true;
  } catch {
    return false;
  }
}

describe("azkeep emulator start", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "azkeep-emu-cli-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("-o json describes the running emulator; it serves until SIGTERM and exits 0", async () => {
    await using s = await start(["-o", "json"], { AZKEEP_EMULATOR_DIR: join(dir, "data") }, completeJson);
    const d = JSON.parse(s.stdout) as {
      urls: { http: string; proxy: string; control: string };
      controlToken: string;
      env: Record<string, string>;
      caCertPath: string;
      identities: { kind: string; certificate?: string }[];
    };
    assert.match(d.urls.http, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(d.env.HTTPS_PROXY, d.urls.proxy);
    assert.equal(d.env.REQUESTS_CA_BUNDLE, d.caCertPath);
    assert.ok(existsSync(d.caCertPath));
    const cert = d.identities.find((i) => i.certificate)!.certificate!;
    assert.equal(statSync(cert).mode & 0o777, 0o600);
    assert.equal((await fetch(`${d.urls.control}/`)).status, 401, "no control token: refused");
    const info = await fetch(`${d.urls.control}/`, {
      headers: { authorization: `Bearer ${d.controlToken}` },
    });
    assert.equal(info.status, 200);
    const doc = await fetch(`${d.urls.http}/organizations/v2.0/.well-known/openid-configuration`);
    assert.equal(doc.status, 200);
    const { code } = await s.stop("SIGTERM");
    assert.equal(code, 0);
    await assert.rejects(fetch(`${d.urls.http}/`));
  });

  it("without -o prints how to use it (URLs, exports, identities); Ctrl-C stops it", async () => {
    await using s = await start(["--no-https"], {}, (out) => out.includes("tailspin.onmicrosoft.com"));
    assert.match(s.stdout, /azkeep emulator is running/);
    assert.match(s.stdout, /Control API\s+http:\/\/127\.0\.0\.1:\d+\/_emulator/);
    const token = /Control token\s+(\S+)/.exec(s.stdout)?.[1];
    const url = /Control API\s+(\S+)/.exec(s.stdout)?.[1];
    assert.ok(token && token.length >= 16, "the banner prints the control token");
    const seed = await fetch(`${url}/seed`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(seed.status, 200);
    assert.match(s.stdout, /alice@contoso\.onmicrosoft\.com/);
    assert.doesNotMatch(s.stdout, /HTTPS_PROXY/);
    const { code } = await s.stop("SIGINT");
    assert.equal(code, 0);
  });

  it("the banner teaches azkeep, not az login; AZKEEP_EMULATOR_CONTROL_TOKEN fixes the token", async () => {
    const fixed = "fixed-control-token-0123456789";
    await using s = await start(
      [],
      { AZKEEP_EMULATOR_DIR: join(dir, "data"), AZKEEP_EMULATOR_CONTROL_TOKEN: fixed },
      (out) => out.includes("azkeep account list"),
    );
    assert.match(s.stdout, /azkeep login -u alice@contoso\.onmicrosoft\.com --password-stdin/);
    assert.doesNotMatch(s.stdout, /\baz login\b/);
    assert.match(s.stdout, new RegExp(`Control token\\s+${fixed}\\s`));
    const url = /Control API\s+(\S+)/.exec(s.stdout)?.[1];
    assert.equal((await fetch(`${url}/`, { headers: { authorization: `Bearer ${fixed}` } })).status, 200);
    assert.equal((await s.stop("SIGTERM")).code, 0);
    const short = await runCli(["emulator", "start", "--no-https"], {
      env: { AZKEEP_EMULATOR_CONTROL_TOKEN: "short" },
    });
    assert.equal(short.code, 1);
    assert.match(short.stderr, /^ERROR: AZKEEP_EMULATOR_CONTROL_TOKEN must be at least 16 characters/);
  });

  it("a restarted emulator accepts the tokens it issued before (the key is kept in the data folder)", async () => {
    const data = join(dir, "restart");
    const args = ["--no-https", "-o", "json", "--data-dir", data];
    const sp = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: "5e5e5e5e-0000-4000-8000-00000000c001",
      client_secret: "azkeep-ci-secret-value",
      scope: "https://management.core.windows.net//.default",
    });
    const subscriptions = (http: string, at: string) =>
      fetch(`${http}/subscriptions?api-version=2022-12-01`, { headers: { authorization: `Bearer ${at}` } });
    let at: string;
    {
      await using first = await start(args, {}, completeJson);
      const { urls } = JSON.parse(first.stdout) as { urls: { http: string } };
      const r = await fetch(`${urls.http}/11111111-1111-1111-1111-111111111111/oauth2/v2.0/token`, {
        method: "POST",
        body: sp,
      });
      at = ((await r.json()) as { access_token: string }).access_token;
      assert.equal((await subscriptions(urls.http, at)).status, 200);
      assert.equal((await first.stop("SIGTERM")).code, 0);
    }
    const keyFile = join(data, "signing-key.pem");
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    await using second = await start(args, {}, completeJson);
    const { urls } = JSON.parse(second.stdout) as { urls: { http: string } };
    assert.equal((await subscriptions(urls.http, at)).status, 200, "the cached token still works");
    await second.stop("SIGTERM");

    writeFileSync(keyFile, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", { mode: 0o600 });
    const damaged = await runCli(["emulator", "start", ...args]);
    assert.equal(damaged.code, 1);
    const lines = damaged.stderr.trimEnd().split("\n");
    assert.ok(
      lines[0]!.startsWith(`ERROR: The emulator's signing key file ${keyFile} is damaged (`),
      lines[0],
    );
    assert.equal(
      lines[1],
      `Delete ${keyFile} to make a new key (tokens the emulator issued before are then refused).`,
    );
  });

  it("a custom seed is served", async () => {
    const seed = join(dir, "seed.json");
    writeFileSync(
      seed,
      JSON.stringify({
        tenants: [{ id: "99999999-9999-9999-9999-999999999999", domain: "solo.test", displayName: "Solo" }],
        users: [],
        apps: [],
        subscriptions: [],
      }),
    );
    await using s = await start(["--seed", seed, "--no-https", "-o", "json"], {}, completeJson);
    const d = JSON.parse(s.stdout) as { urls: { http: string } };
    const doc = await fetch(`${d.urls.http}/solo.test/v2.0/.well-known/openid-configuration`);
    assert.equal(
      ((await doc.json()) as { issuer: string }).issuer,
      `${d.urls.http}/99999999-9999-9999-9999-999999999999/v2.0`,
    );
    await s.stop("SIGTERM");
  });

  it("a malformed seed or port is one clear error, no stack trace", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{"tenants": [{"id": "not-a-guid", "domain": "x", "displayName": "x"}]}');
    const r1 = await runCli(["emulator", "start", "--seed", bad]);
    assert.equal(r1.code, 1);
    assert.equal(
      r1.stderr.split("\n")[0],
      `ERROR: The seed file '${bad}' is not usable: tenants[0].id: "not-a-guid" is not a GUID`,
    );
    assert.doesNotMatch(r1.stderr, /\n\s+at /);
    writeFileSync(bad, "{nope");
    const r2 = await runCli(["emulator", "start", "--seed", bad]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /^ERROR: The seed file .* is not valid JSON/);
    const r3 = await runCli(["emulator", "start", "--seed", join(dir, "missing.json")]);
    assert.equal(r3.code, 1);
    assert.match(r3.stderr, /^ERROR: Cannot read the seed file/);
    const r4 = await runCli(["emulator", "start", "--port", "http"]);
    assert.equal(r4.code, 2);
    assert.match(r4.stderr, /^ERROR: --port must be a port number/);
  });
});
