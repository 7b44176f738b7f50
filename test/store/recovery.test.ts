/**
 * Everyday store failures, through the built CLI: a rotation that must rotate, a key another
 * session holds, no usable key provider before a sign-in, folders that cannot be used, and
 * plain files of the wrong shape — each one clear ERROR (or an absolute, correct path), nothing
 * sealed ever discarded, and `store repair` bringing back what the seal still holds.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requireTool } from "../helpers/require-tool.js";
import { forgetKeyutilsKey } from "./run-child.js";
import { CONTOSO, SP } from "../signin/emulator.js";
import { BIN, assertOneError, cachedToken, run, signedIn, storeFiles, type SignedIn } from "./cli-env.js";

describe("store recovery and refusals (built CLI)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  before(async () => (s = await signedIn()));
  after(async () => s?.close());

  it("store migrate --to passphrase with AZKEEP_NEW_PASSPHRASE_FILE rotates: the old passphrase fails, the new opens", async () => {
    using m = s.machine();
    const before = await cachedToken(m);
    const file = join(m.h.home, "new-pass");
    writeFileSync(file, "a brand new passphrase\n", { mode: 0o600 });
    const r = await m.azkeep(["store", "migrate", "--to", "passphrase"], { input: "" });
    // No new passphrase given at all: the "new" one would be the old: refused, nothing changed.
    assertOneError(r, /new passphrase is the same as the one that opens the store now/, 2);
    assert.equal(await cachedToken(m), before);

    Object.assign(m.env, { AZKEEP_NEW_PASSPHRASE_FILE: file });
    const ok = await m.azkeep(["store", "migrate", "--to", "passphrase", "-o", "json"]);
    assert.equal(ok.code, 0, ok.stderr);
    delete m.env.AZKEEP_NEW_PASSPHRASE_FILE;
    const old = await m.azkeep(["account", "get-access-token"]);
    assertOneError(old, /passphrase does not open the token store/);
    Object.assign(m.env, { AZKEEP_PASSPHRASE: "a brand new passphrase" });
    assert.equal(await cachedToken(m), before, "the new passphrase opens the same store");
    assert.deepEqual(
      readdirSync(m.h.configDir).filter((n) => /damaged/.test(n)),
      [],
      "nothing was set aside",
    );
  });

  it("no usable key provider: login fails before any sign-in request, nothing asked", async () => {
    using m = s.machine();
    rmSync(m.h.configDir, { recursive: true });
    delete m.env.AZKEEP_PASSPHRASE; // passphrase provider, no passphrase, no terminal
    await s.emu.control.clearRequests();
    for (const args of [
      ["login", "--use-device-code"],
      ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
      ["login", "-u", "alice@contoso.onmicrosoft.com", "--password-stdin"],
    ]) {
      const r = await m.azkeep(args, { input: SP.secret, timeoutMs: 20_000 });
      assertOneError(r, /passphrase provider needs a new passphrase/);
      assert.doesNotMatch(r.stderr, /devicelogin|code [A-Z0-9]{6,}/i, "a device code was shown");
    }
    assert.equal(await s.emu.control.countRequests(), 0, "the identity provider was asked");
  });

  it("keyutils: a process that may not read the key (Permission denied) is told so; the store is not set aside", async (t) => {
    if (!requireTool(t, "keyctl", "apt-get install keyutils")) return;
    const h = s.machine({ AZKEEP_STORE_PROVIDER: "keyutils" });
    rmSync(h.h.configDir, { recursive: true });
    delete h.env.AZKEEP_PASSPHRASE;
    // Session A signs in; its key is then unlinked from the persistent keyring, so another
    // session B of the same user finds it (keyutils scans /proc/keys) but may not read it.
    const cfg = join(h.h.configDir, "config.json");
    const script = [
      `"$NODE" "$BIN" login --service-principal -u ${SP.clientId} --tenant ${CONTOSO} --password-stdin -o none || exit 10`,
      `"$NODE" "$BIN" account get-access-token -o none || exit 11`,
      `KID=$(sed -n 's/.*"keyId": "\\([0-9a-f]*\\)".*/\\1/p' "${cfg}" | head -1)`,
      'echo "kid=$KID" >&2',
      'id=$(keyctl search @s user "azkeep:$KID") || exit 12',
      'keyctl unlink "$id" "$(keyctl get_persistent @s)" >/dev/null || exit 13',
      'keyctl session - "$NODE" "$BIN" account get-access-token; echo "rc=$?" >&2',
      '"$NODE" "$BIN" account get-access-token -o none; echo "after=$?" >&2',
    ];
    const env = { ...h.env, NODE: process.execPath, BIN };
    const r = await run(["keyctl", "session", "-", "sh", "-c", script.join("\n")], {
      env,
      input: SP.secret,
      timeoutMs: 60_000,
    });
    const kid = /kid=([0-9a-f]+)/.exec(r.stderr)?.[1];
    if (kid) t.after(() => forgetKeyutilsKey(kid));
    assert.ok(kid, r.stderr);
    const lines = r.stderr.split("\n");
    const errors = lines.filter((l) => l.startsWith("ERROR:"));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /may not read it .*Permission denied.*left as it is/, r.stderr);
    assert.match(r.stderr, /rc=1/);
    assert.match(r.stderr, /after=0/, "the session that may read it still works");
    assert.ok(existsSync(join(h.h.configDir, "tokens.sealed")));
    assert.deepEqual(
      readdirSync(h.h.configDir).filter((n) => /damaged/.test(n)),
      [],
      "tokens.sealed was set aside",
    );
  });

  it("unusable config folders: relative, under /proc, empty HOME, read-only — one ERROR or an absolute path", async () => {
    using m = s.machine();
    const cwd = mkdtempSync(join(tmpdir(), "azkeep-cwd-"));
    try {
      const base = { ...m.env };
      delete base.AZKEEP_CONFIG_DIR;
      const inCwd = (args: string[], env: Record<string, string>) =>
        run([process.execPath, BIN, ...args], {
          env,
          cwd,
          timeoutMs: 20_000,
        });
      // A relative AZKEEP_CONFIG_DIR: refused on reads and writes, nothing made in the cwd.
      for (const args of [
        ["account", "get-access-token"],
        ["store", "status"],
        ["store", "migrate", "--to", "passphrase"],
      ])
        assertOneError(await inCwd(args, { ...base, AZKEEP_CONFIG_DIR: "rel/azkeep" }), /is a relative path/);
      // Under /proc: one error at once (Node's recursive mkdir spun there forever).
      const t0 = Date.now();
      assertOneError(
        await inCwd(["store", "migrate", "--to", "passphrase"], {
          ...base,
          AZKEEP_CONFIG_DIR: "/proc/azkeep/x",
        }),
        /could not create \/proc\/azkeep/,
      );
      assert.ok(Date.now() - t0 < 10_000);
      // HOME= empty: the user database's home, never ./.config in the working folder.
      const st = await inCwd(["store", "status", "--query", "configDir", "-o", "tsv"], { ...base, HOME: "" });
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout.trim(), /^\/.+\/\.config\/azkeep$/);
      // XDG_CONFIG_HOME relative: ignored, as the XDG spec says.
      const x = await inCwd(["store", "status", "--query", "configDir", "-o", "tsv"], {
        ...base,
        XDG_CONFIG_HOME: "relative",
      });
      assert.equal(x.stdout.trim(), join(m.h.home, ".config", "azkeep"));
      assert.deepEqual(readdirSync(cwd), [], "something was written to the working folder");
      // A read-only folder: writes fail with one error naming the way out; reads still work.
      if (process.getuid?.() !== 0) {
        chmodSync(m.h.configDir, 0o500);
        assertOneError(await m.azkeep(["store", "migrate", "--to", "passphrase"]), /could not write/);
        chmodSync(m.h.configDir, 0o700);
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('profile.json with "user": null: one ERROR (no crash) in get-access-token, logout and login; store repair restores it', async () => {
    using m = s.machine();
    const before = await cachedToken(m);
    const path = join(m.h.configDir, "profile.json");
    const profile = JSON.parse(readFileSync(path, "utf8")) as { subscriptions: { user: unknown }[] };
    profile.subscriptions[0]!.user = null;
    writeFileSync(path, JSON.stringify(profile), { mode: 0o600 });
    const sealed = readFileSync(join(m.h.configDir, "tokens.sealed"));
    const r = await m.azkeep(["account", "get-access-token"]);
    assertOneError(
      r,
      /profile .* is damaged: it has the wrong shape \(subscriptions\[0\]\.user is null, not an object\)/,
    );
    assert.match(r.stderr, /azkeep store repair/);
    assert.deepEqual(readFileSync(join(m.h.configDir, "tokens.sealed")), sealed, "the seal was touched");
    // (A plain `logout` would now sign the SP out for real: the profile moved aside as damaged is
    // answered from the copy sealed in tokens.sealed. Another user's logout exercises the path.)
    for (const args of [
      ["logout", "--username", "nobody@example.com"],
      ["account", "list"],
    ]) {
      const x = await m.azkeep(args);
      assert.doesNotMatch(x.stderr, /bug in azkeep|TypeError/, x.stderr);
    }
    const rep = await m.azkeep(["store", "repair", "-o", "json"]);
    assert.equal(rep.code, 0, rep.stderr);
    const report = JSON.parse(rep.stdout) as {
      config: string;
      accountsAdded: { user: string; type: string }[];
      restoredFromSeal?: string[];
    };
    assert.equal(report.config, "kept");
    // The sealed copy restores the account list exactly (integrity.ts); nothing to rebuild.
    // (The profile moved aside was already written back from it by the next write, `logout`.)
    assert.ok(Array.isArray(report.restoredFromSeal), rep.stdout);
    const back = JSON.parse(readFileSync(path, "utf8")) as { subscriptions: { user: unknown }[] };
    assert.ok(back.subscriptions[0]?.user, "the account is whole again");
    assert.deepEqual(report.accountsAdded, []);
    assert.equal(await cachedToken(m), before, "the restored account serves its cached token");
    // login works again too (the profile now has the right shape).
    const login = await m.azkeep(
      [
        "login",
        "--service-principal",
        "-u",
        SP.clientId,
        "--tenant",
        CONTOSO,
        "--password-stdin",
        "-o",
        "none",
      ],
      { input: SP.secret },
    );
    assert.equal(login.code, 0, login.stderr);
  });

  it("config.json of the wrong shape is refused like a damaged file; the seal is never set aside; repair finds the key", async () => {
    using m = s.machine();
    const before = await cachedToken(m);
    const cfg = join(m.h.configDir, "config.json");
    const sealedPath = join(m.h.configDir, "tokens.sealed");
    const sealed = readFileSync(sealedPath);
    const files = storeFiles(m.h.configDir);
    for (const bad of [
      '{"store":"oops"}',
      '{"store":{"key":{"provider":"nope"}}}',
      "[1,2]",
      '{"version":1,"st',
    ]) {
      writeFileSync(cfg, bad, { mode: 0o600 });
      for (const args of [
        ["account", "get-access-token"],
        ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
      ]) {
        const r = await m.azkeep(args, { input: SP.secret });
        assertOneError(r, /config\.json (has the wrong shape|is not valid JSON)/);
        assert.match(r.stderr, /azkeep store repair/);
      }
      assert.deepEqual(readFileSync(sealedPath), sealed, "the seal changed");
      assert.deepEqual(storeFiles(m.h.configDir), files, "a file was moved or added");
    }
    // config.json gone entirely: the seal stays (not a definite loss), and a sign-in does not overwrite it.
    rmSync(cfg);
    const gone = await m.azkeep(
      ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
      { input: SP.secret },
    );
    assertOneError(gone, /config\.json names no key .*left as it is/);
    assert.deepEqual(readFileSync(sealedPath), sealed);
    // store repair: the key id is in the seal's header; the passphrase derives that key again.
    writeFileSync(cfg, '{"store":"oops"}', { mode: 0o600 });
    const rep = await m.azkeep(["store", "repair", "-o", "json"]);
    assert.equal(rep.code, 0, rep.stderr);
    const report = JSON.parse(rep.stdout) as { config: string; keyFoundIn: string; configMovedTo: string };
    assert.equal(report.config, "rebuilt");
    assert.equal(report.keyFoundIn, "passphrase");
    assert.ok(existsSync(report.configMovedTo), "the damaged config.json is kept aside");
    assert.equal(await cachedToken(m), before);
    // Without the passphrase nothing is found and nothing changes.
    rmSync(cfg);
    delete m.env.AZKEEP_PASSPHRASE;
    const none = await m.azkeep(["store", "repair"]);
    assertOneError(none, /No key provider here holds the key/);
    assert.equal(existsSync(cfg), false);
    assert.deepEqual(readFileSync(sealedPath).subarray(0, 21), sealed.subarray(0, 21));
  });
});
