/**
 * The az commands that change who is signed in, or which subscription or cloud az uses, never
 * reach the real Azure CLI through the shim: `az account set`, `az account clear`, `az logout`
 * and `az cloud set` are azkeep's commands (so they change what the shim serves), `az login` is
 * refused with the azkeep command (the Azure CLI would write its plaintext token cache), and
 * `az --version` tells what `az version` tells. A fake "real az" after the shim on PATH records
 * every call, so a silent pass-through fails the test.
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runProcess } from "../helpers/process.js";
import { ALICE, DEV_SUB, SHIM_DIR, signedIn, type SignedIn } from "../tokens/signed-in.js";
import { PROD_SUB } from "../helpers/seed.js";

describe("state-changing az commands through the shim (e2e, emulator)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  let fakeDir: string;
  let calls: string;
  let env: Record<string, string>;
  before(async () => {
    s = await signedIn();
    fakeDir = mkdtempSync(join(tmpdir(), "azkeep-recording-az-"));
    calls = join(fakeDir, "calls");
    writeFileSync(join(fakeDir, "az"), `#!/bin/sh\necho "$*" >> '${calls}'\nexit 0\n`);
    chmodSync(join(fakeDir, "az"), 0o755);
    env = { ...s.env, PATH: `${SHIM_DIR}:${fakeDir}:/usr/bin:/bin` };
  });
  after(async () => {
    await s?.close();
    if (fakeDir) rmSync(fakeDir, { recursive: true, force: true });
  });

  const az = (args: string[]) =>
    runProcess(join(SHIM_DIR, "az"), args, { env, timeoutMs: 60_000, cwd: s.home });
  const passedThrough = () => (existsSync(calls) ? readFileSync(calls, "utf8") : "");

  it("az login is refused in every form, naming azkeep login; nothing written, no secret echoed", async () => {
    for (const args of [
      ["login"],
      ["--debug", "login", "--use-device-code"],
      ["login", "--service-principal", "-u", "app", "-p", "s3cret-Value-42", "--tenant", "t"],
      ["-o", "json", "login", "--identity"],
    ]) {
      const r = await az(args);
      assert.equal(r.code, 1, args.join(" "));
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /^ERROR: azkeep's az shim does not run `az login`/);
      assert.match(r.stderr, /Sign in with `azkeep login` instead/);
      assert.equal(r.stderr.trimEnd().split("\n").length, 2);
      assert.doesNotMatch(r.stderr, /s3cret/);
    }
    assert.equal(passedThrough(), "");
    assert.equal(existsSync(join(s.home, ".azure")), false, "no Azure CLI files");
  });

  it("az account set changes what the shim serves (azkeep's account set), quietly as az", async () => {
    const set = await az(["account", "set", "--subscription", PROD_SUB]);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual([set.stdout, set.stderr], ["", ""]);
    const show = await az(["account", "show", "--query", "id", "-o", "tsv"]);
    assert.equal(show.stdout.trim(), PROD_SUB);
    const mine = await s.cli(["account", "show", "--query", "id", "-o", "tsv"]);
    assert.equal(mine.stdout.trim(), PROD_SUB, "azkeep's own default moved too");
    const token = await az(["account", "get-access-token", "--query", "subscription", "-o", "tsv"]);
    assert.equal(token.stdout.trim(), PROD_SUB);
    const back = await az(["account", "set", "-s", DEV_SUB]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal((await az(["account", "show", "--query", "id", "-o", "tsv"])).stdout.trim(), DEV_SUB);
    assert.equal(passedThrough(), "");
  });

  it("az account set to an unknown subscription: azkeep's error, exit 1, nothing changed", async () => {
    const r = await az(["account", "set", "-s", "no-such-subscription"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: .*no-such-subscription/);
    assert.equal((await az(["account", "show", "--query", "id", "-o", "tsv"])).stdout.trim(), DEV_SUB);
    assert.equal(passedThrough(), "");
  });

  it("az cloud set is azkeep's cloud set", async () => {
    const r = await az(["cloud", "set", "-n", "NoSuchCloud"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: .*NoSuchCloud/);
    assert.match(r.stderr, /azkeep cloud/);
    assert.equal(passedThrough(), "");
  });

  it("az --version and az version tell the same story", async () => {
    const json = await az(["version"]);
    const text = await az(["--version"]);
    assert.equal(text.code, 0, text.stderr);
    const version = (JSON.parse(json.stdout) as Record<string, string>)["azure-cli"];
    assert.match(text.stdout, new RegExp(`^azure-cli {2,}${version!.replace(/\./g, "\\.")}\n`));
    assert.match(text.stdout, /^core {2,}/m);
    assert.match(text.stdout, /azkeep's az shim/);
    assert.match(text.stdout, new RegExp(`Other commands go to the Azure CLI at ${fakeDir}/az\\.`));
    assert.equal(passedThrough(), "");
  });

  it("az logout and az account clear sign out of azkeep (what the shim serves)", async () => {
    const out = await az(["logout"]);
    assert.equal(out.code, 0, out.stderr);
    const after1 = await az(["account", "get-access-token"]);
    assert.equal(after1.code, 1);
    assert.match(after1.stderr, /azkeep login/);
    const again = await s.cli(["login", "-u", ALICE.upn, "--password-stdin"], { input: ALICE.password });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await az(["account", "get-access-token"])).code, 0);
    const clear = await az(["account", "clear"]);
    assert.equal(clear.code, 0, clear.stderr);
    const list = await az(["account", "list"]);
    assert.deepEqual(JSON.parse(list.stdout), []);
    assert.equal(passedThrough(), "");
  });

  it("other commands still go to the real az", async () => {
    const r = await az(["group", "list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(passedThrough(), "group list\n");
  });
});
