/**
 * `azkeep account get-access-token` end to end: the built CLI, signed in to the emulator through
 * its HTTPS proxy, with az's flags, rules, output fields and exit codes (reference §2.4).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jwtClaims } from "../helpers/jwt.js";
import { ALICE, CONTOSO, DEV_SUB, DEV_SUB_NAME, FABRIKAM, signedIn, type SignedIn } from "./signed-in.js";

const LOCAL = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.000000$/;

describe("account get-access-token (e2e, emulator)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  before(async () => {
    s = await signedIn();
  });
  after(async () => {
    await s?.close();
  });

  const tokenRequests = () => s.emu.control.countRequests({ endpoint: "token" });

  it("prints az's fields with sorted keys; a cached token costs no request", async () => {
    await s.cli(["account", "get-access-token"]); // warm the cache
    const before = await tokenRequests();
    const r = await s.cli(["account", "get-access-token"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await tokenRequests(), before, "served from the cache");
    const v = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(v), [
      "accessToken",
      "expiresOn",
      "expires_on",
      "subscription",
      "tenant",
      "tokenType",
    ]);
    assert.match(r.stdout, /^\{\n {2}"accessToken": /, "indented by two, as knack");
    assert.equal(v.subscription, DEV_SUB);
    assert.equal(v.tenant, CONTOSO);
    assert.equal(v.tokenType, "Bearer");
    assert.equal(typeof v.expires_on, "number");
    assert.ok(Number.isInteger(v.expires_on));
    assert.match(String(v.expiresOn), LOCAL);
    // expiresOn is expires_on in local time (what JS's `new Date(expiresOn)` parses it as)
    assert.equal(new Date(String(v.expiresOn)).getTime() / 1000, v.expires_on);
    const c = jwtClaims(String(v.accessToken));
    assert.equal(c.aud, "https://management.core.windows.net/");
    assert.equal(c.upn, ALICE.upn);
    assert.ok((v.expires_on as number) - Date.now() / 1000 > 300, "more than 5 minutes left");
  });

  it("-o tsv and --query accessToken -o tsv, as scripts use them", async () => {
    const tsv = await s.cli(["account", "get-access-token", "-o", "tsv"]);
    assert.equal(tsv.code, 0, tsv.stderr);
    const cols = tsv.stdout.trimEnd().split("\t");
    assert.equal(cols.length, 6);
    assert.match(cols[1]!, LOCAL);
    assert.match(cols[2]!, /^\d+$/);
    assert.deepEqual(cols.slice(3), [DEV_SUB, CONTOSO, "Bearer"]);
    const q = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    assert.equal(q.stdout.trim(), cols[0]);
  });

  it("--resource keeps the trailing slash; --resource-type and --scope pick the audience", async () => {
    const cases: [string[], string][] = [
      [["--resource", "https://management.core.windows.net/"], "https://management.core.windows.net/"],
      [["--resource-type", "ms-graph"], "https://graph.microsoft.com/"],
      [["--scope", "https://graph.microsoft.com/.default"], "https://graph.microsoft.com"],
      [["--resource", "https://vault.azure.net"], "https://vault.azure.net"],
      [["--scope", "https://management.azure.com/.default", "-o=json"], "https://management.azure.com"],
    ];
    for (const [args, aud] of cases) {
      const r = await s.cli(["account", "get-access-token", ...args]);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(jwtClaims(JSON.parse(r.stdout).accessToken as string).aud, aud, args.join(" "));
    }
  });

  it("one refresh token serves other resources and tenants; --tenant leaves out subscription", async () => {
    const before = await s.emu.control.countRequests({ endpoint: "token", grantType: "refresh_token" });
    const r = await s.cli([
      "account",
      "get-access-token",
      "--tenant",
      FABRIKAM,
      "--resource-type",
      "ms-graph",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(v.tenant, FABRIKAM);
    assert.ok(!("subscription" in v));
    assert.equal(jwtClaims(v.accessToken as string).tid, FABRIKAM);
    assert.equal(
      await s.emu.control.countRequests({ endpoint: "token", grantType: "refresh_token" }),
      before + 1,
    );
    const secrets = await s.secrets();
    assert.equal(secrets.refreshTokens.length, 1, "still one refresh token");
  });

  it("--subscription by name (with spaces, any case)", async () => {
    const r = await s.cli(["account", "get-access-token", "--subscription", DEV_SUB_NAME.toUpperCase()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).subscription, DEV_SUB);
  });

  it("exit codes as az: both --subscription and --tenant → 1; a bad flag value → 2; unknown subscription → 1", async () => {
    const both = await s.cli(["account", "get-access-token", "--subscription", DEV_SUB, "--tenant", CONTOSO]);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /^ERROR: Please specify only one of subscription and tenant, not both$/m);
    assert.equal(both.stdout, "");
    const bad = await s.cli(["account", "get-access-token", "--resource-type", "nope"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^ERROR: .*nope/m);
    const unknown = await s.cli(["account", "get-access-token", "--subscription", "No Such Sub"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Subscription 'No Such Sub' not found/);
    const query = await s.cli(["account", "get-access-token", "--query", "[["]);
    assert.equal(query.code, 2);
    assert.match(query.stderr, /^ERROR: argument --query: invalid jmespath_type value: '\[\['/m);
    assert.equal(query.stdout, "");
    for (const r of [both, bad, unknown, query])
      assert.doesNotMatch(r.stderr, /\n\s+at |eyJ/, "no stack trace, no token");
  });

  it("an expired token is refreshed (one request) and the refresh token rotates", async () => {
    const rtBefore = (await s.secrets()).refreshTokens[0]!.secret;
    await s.ageAccessTokens(-1);
    const before = await tokenRequests();
    const r = await s.cli(["account", "get-access-token"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await tokenRequests(), before + 1);
    const v = JSON.parse(r.stdout) as { expires_on: number };
    assert.ok(v.expires_on - Date.now() / 1000 > 3000);
    const rtAfter = (await s.secrets()).refreshTokens[0]!.secret;
    assert.notEqual(rtAfter, rtBefore, "the rotated refresh token was stored");
  });

  it("with 4 minutes left the token is refreshed; with 6 it is reused (the 5-minute margin)", async () => {
    await s.ageAccessTokens(360);
    let before = await tokenRequests();
    assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
    assert.equal(await tokenRequests(), before);
    await s.ageAccessTokens(240);
    before = await tokenRequests();
    assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
    assert.equal(await tokenRequests(), before + 1);
  });

  it("a revoked sign-in ends with the exact azkeep login command; the refresh token is kept", async () => {
    await s.ageAccessTokens(-1);
    await s.emu.control.expireRefreshTokens(ALICE.upn);
    const r = await s.cli(["account", "get-access-token"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: AADSTS700082/m);
    assert.match(r.stderr, /^azkeep login --tenant 11111111-1111-1111-1111-111111111111/m);
    assert.doesNotMatch(r.stderr, /eyJ|\n\s+at /);
    assert.equal((await s.secrets()).refreshTokens.length, 1);
    // signing in again fixes it
    const login = await s.cli(["login", "-u", ALICE.upn, "--password-stdin"], { input: ALICE.password });
    assert.equal(login.code, 0, login.stderr);
    assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
  });

  it("not signed in → exit 1 and the command to run", async () => {
    const r = await s.cli(["account", "get-access-token"], {
      env: { AZKEEP_CONFIG_DIR: `${s.home}/empty-config` },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: Please run 'azkeep login' to setup account\.$/m);
  });
});
