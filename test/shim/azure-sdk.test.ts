/**
 * The real Azure SDK for JavaScript with azkeep: @azure/identity's AzureCliCredential and
 * DefaultAzureCredential (running the az shim first on PATH), and azkeep's own
 * AzkeepCredential, authenticate @azure/arm-resources, which lists resource groups at
 * https://management.azure.com — the emulator, through its HTTPS proxy (@azure/core-rest-pipeline
 * honours HTTPS_PROXY / NO_PROXY; Node trusts the emulator's CA through NODE_EXTRA_CA_CERTS).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { DEV_SUB, REPO, SHIM_DIR, signedIn, type SignedIn } from "../tokens/signed-in.js";
import { jwtClaims } from "../helpers/jwt.js";

const CLIENT = fileURLToPath(new URL("./sdk-client.mjs", import.meta.url));
const LIB = new URL("dist/lib/index.js", `file://${REPO}`).href;

function runClient(
  kind: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLIENT, kind, DEV_SUB, LIB], {
      env,
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe("Azure SDK for JS with azkeep (e2e, emulator through its proxy)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  let env: Record<string, string>;
  before(async () => {
    s = await signedIn();
    env = {
      ...s.env,
      PATH: `${SHIM_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      // DefaultAzureCredential's managed identity probe must not find a real IMDS here.
      // The emulator's proxy also plays IMDS (a VM's managed identity), which
      // DefaultAzureCredential would pick before the CLI: reach for the real, absent IMDS instead.
      NO_PROXY: `${s.env.NO_PROXY},169.254.169.254`,
      no_proxy: `${s.env.no_proxy},169.254.169.254`,
    };
  });
  after(async () => {
    await s?.close();
  });

  for (const kind of ["cli", "default", "azkeep"]) {
    it(`${kind === "cli" ? "AzureCliCredential" : kind === "default" ? "DefaultAzureCredential" : "AzkeepCredential"} lists resource groups with @azure/arm-resources`, async () => {
      const before = await s.emu.control.countRequests({ endpoint: "resourcegroups" }).catch(() => -1);
      const r = await runClient(kind, env);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { names: string[]; expiresOnTimestamp: number; token: string };
      assert.ok(out.names.length > 0, "resource groups listed");
      assert.ok(out.names.includes("rg-dev-app"), out.names.join(","));
      assert.ok(out.expiresOnTimestamp > Date.now() + 300_000);
      const c = jwtClaims(out.token);
      assert.equal(c.upn, "alice@contoso.onmicrosoft.com");
      assert.equal(c.aud, "https://management.azure.com");
      if (before >= 0)
        assert.ok((await s.emu.control.countRequests({ endpoint: "resourcegroups" })) > before);
    });
  }

  it("AzkeepCredential answers a CAE claims challenge from ARM: the cache is skipped, the claims are sent", async () => {
    // warm: a cached ARM token exists
    assert.equal((await runClient("azkeep", env)).code, 0);
    await s.emu.control.requireClaimsChallenge({ principal: "alice@contoso.onmicrosoft.com" });
    try {
      const before = await s.emu.control.countRequests({ endpoint: "token", grantType: "refresh_token" });
      const r = await runClient("azkeep", env);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        (await s.emu.control.countRequests({ endpoint: "token", grantType: "refresh_token" })) > before,
        "a new token was fetched for the challenge",
      );
    } finally {
      await s.emu.control.clearClaimsChallenges();
    }
  });

  it("account get-access-token --claims-challenge skips the cache", async () => {
    await s.cli(["account", "get-access-token"]);
    const before = await s.emu.control.countRequests({ endpoint: "token" });
    const claims = Buffer.from('{"access_token":{"nbf":{"essential":true,"value":"1"}}}').toString("base64");
    const r = await s.cli(["account", "get-access-token", "--claims-challenge", claims]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await s.emu.control.countRequests({ endpoint: "token" }), before + 1);
  });
});
