/**
 * Service principals and managed identities through get-access-token, end to end: a service
 * principal re-acquires with its stored credential (a federated token file is re-read every
 * time), a managed identity asks its endpoint.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CONTOSO, FABRIKAM, SP, signedIn, type SignedIn } from "./signed-in.js";
import { jwtClaims } from "../helpers/jwt.js";

describe("service principal with a client secret (e2e)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  before(async () => {
    s = await signedIn({ servicePrincipal: true });
  });
  after(async () => {
    await s?.close();
  });

  it("gets tokens, re-acquires with the stored secret after expiry", async () => {
    const r = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jwtClaims(r.stdout.trim()).appid, SP.clientId);
    await s.ageAccessTokens(-1);
    const before = await s.emu.control.countRequests({ endpoint: "token", grantType: "client_credentials" });
    const again = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    assert.equal(again.code, 0, again.stderr);
    assert.notEqual(again.stdout, r.stdout);
    assert.equal(
      await s.emu.control.countRequests({ endpoint: "token", grantType: "client_credentials" }),
      before + 1,
    );
  });
});

describe("service principal with a federated token file (e2e)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  let file: string;
  before(async () => {
    s = await signedIn();
    file = join(s.home, "federated-token");
    writeFileSync(file, await s.emu.control.mintFederatedToken(), { mode: 0o600 });
    const login = await s.cli([
      "login",
      "--service-principal",
      "-u",
      SP.clientId,
      "--tenant",
      CONTOSO,
      "--federated-token-file",
      file,
    ]);
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    await s?.close();
  });

  it("re-reads the file at every token request (it rotates)", async () => {
    const first = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(jwtClaims(first.stdout.trim()).appid, SP.clientId);
    // rotate the file: the next acquisition must use the new token
    writeFileSync(file, await s.emu.control.mintFederatedToken(), { mode: 0o600 });
    await s.ageAccessTokens(-1);
    const second = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    assert.equal(second.code, 0, second.stderr);
    assert.notEqual(second.stdout, first.stdout);
    // a broken file shows that it is read each time, with a clear message
    writeFileSync(file, "not a token\n");
    await s.ageAccessTokens(-1);
    const broken = await s.cli(["account", "get-access-token"]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /federated token file .* does not hold a JWT/);
  });
});

describe("managed identity (e2e)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  let miEnv: Record<string, string>;
  before(async () => {
    s = await signedIn();
    miEnv = s.emu.managedIdentityEnv;
    const login = await s.cli(["login", "--identity"], { env: miEnv });
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    await s?.close();
  });

  it("asks the identity endpoint for the resource; another tenant is refused", async () => {
    const before = await s.emu.control.countRequests();
    const r = await s.cli(["account", "get-access-token", "--resource", "https://vault.azure.net"], {
      env: miEnv,
    });
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout) as { accessToken: string; tenant: string };
    assert.equal(jwtClaims(v.accessToken).aud, "https://vault.azure.net");
    assert.equal(v.tenant, CONTOSO);
    assert.ok((await s.emu.control.countRequests()) > before);
    const other = await s.cli(["account", "get-access-token", "--tenant", FABRIKAM], { env: miEnv });
    assert.equal(other.code, 1);
    assert.match(other.stderr, /managed identity/);
  });
});
