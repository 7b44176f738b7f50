/**
 * Hostile files in the config folder, planted the way an attacker (another program of the
 * user's, or another local user) would, and the built CLI run against them: each is refused
 * with one ERROR line naming the fix, nothing hangs (every run has a bounded timeout), every
 * wait ends on SIGTERM/SIGINT, and once the planted file is gone the store works as before.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { hasCommand } from "../helpers/require-tool.js";
import { BIN, assertOneError, cachedToken, run, signedIn, storeFiles, type SignedIn } from "./cli-env.js";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

/** Another user acting: `setpriv` to nobody (root only); under CI=true a missing setpriv fails. */
function asNobody(t: { skip(m: string): void }): boolean {
  if (isRoot && hasCommand("setpriv")) return true;
  const why = isRoot
    ? "setpriv is missing (apt-get install util-linux)"
    : "needs root to act as another user";
  if (process.env.CI === "true" && isRoot) throw new Error(why);
  t.skip(why);
  return false;
}

function mkfifo(path: string): void {
  assert.equal(spawnSync("mkfifo", ["-m", "600", path], { stdio: "ignore" }).status, 0, "mkfifo");
}

describe("hostile files in the config folder (built CLI)", { timeout: 240_000 }, () => {
  let s: SignedIn;
  before(async () => (s = await signedIn()));
  after(async () => s?.close());

  it("the config folder as a symlink is refused, not followed: the target is neither chmodded nor written", async () => {
    using m = s.machine();
    const target = mkdtempSync(join(tmpdir(), "azkeep-link-target-"));
    chmodSync(target, 0o755);
    try {
      const real = `${m.h.configDir}.real`;
      renameSync(m.h.configDir, real);
      symlinkSync(target, m.h.configDir);
      for (const args of [["account", "get-access-token"], ["account", "list"], ["logout"]]) {
        const r = await m.azkeep(args);
        assertOneError(r, /azkeep\/?\S* is a symbolic link .*refuses/);
        assert.match(r.stderr, /AZKEEP_CONFIG_DIR=/, "the fix is in the message");
      }
      assert.equal(statSync(target).mode & 0o777, 0o755, "the link's target was chmodded");
      assert.deepEqual(storeFiles(target), [], "something was written through the link");
      rmSync(m.h.configDir);
      renameSync(real, m.h.configDir);
      assert.match(await cachedToken(m), /^eyJ/);
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });

  it("a config folder another user made (setpriv) is refused with one ERROR, not 'a bug'", async (t) => {
    if (!asNobody(t)) return;
    using m = s.machine();
    // The attacker gets there first: a shared, sticky folder where the victim's store will go.
    const shared = mkdtempSync(join(tmpdir(), "azkeep-shared-"));
    chmodSync(shared, 0o1777);
    try {
      const dir = join(shared, "azkeep");
      const made = await run(
        ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "mkdir", "-m", "700", dir],
        { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, cwd: "/", timeoutMs: 10_000 },
      );
      assert.equal(made.code, 0, made.stderr);
      assert.equal(lstatSync(dir).uid, NOBODY);
      const env = { AZKEEP_CONFIG_DIR: dir };
      Object.assign(m.env, env);
      for (const args of [
        ["account", "get-access-token"],
        ["login", "--service-principal", "-u", "x", "--tenant", "t", "--password-stdin"],
        ["store", "migrate", "--to", "passphrase"],
      ]) {
        const r = await m.azkeep(args, { input: "secret" });
        assertOneError(r, /belongs to another user \(uid 65534\)/);
      }
      assert.equal(lstatSync(dir).uid, NOBODY, "not chowned");
      assert.equal(lstatSync(dir).mode & 0o777, 0o700, "not chmodded");
    } finally {
      rmSync(shared, { recursive: true, force: true });
    }
  });

  it("a group- or other-writable config folder is refused (reads and writes), with the chmod", async () => {
    using m = s.machine();
    for (const mode of [0o770, 0o703, 0o777]) {
      chmodSync(m.h.configDir, mode);
      for (const args of [
        ["account", "get-access-token"],
        ["store", "migrate", "--to", "passphrase"],
      ]) {
        const r = await m.azkeep(args);
        assertOneError(r, /is accessible by other users/);
        assert.match(r.stderr, /chmod 700/);
      }
      assert.equal(statSync(m.h.configDir).mode & 0o777, mode, "a writable folder was silently chmodded");
    }
    chmodSync(m.h.configDir, 0o700);
    assert.match(await cachedToken(m), /^eyJ/);
  });

  it("tokens.sealed as a FIFO: every token command ends at once with one ERROR", async () => {
    using m = s.machine();
    const sealed = join(m.h.configDir, "tokens.sealed");
    const good = readFileSync(sealed);
    rmSync(sealed);
    mkfifo(sealed);
    for (const args of [
      ["account", "get-access-token"],
      ["account", "get-access-token", "-o", "tsv"],
      ["logout"],
    ]) {
      const t0 = Date.now();
      const r = await m.azkeep(args, { timeoutMs: 15_000 });
      assertOneError(r, /tokens\.sealed is a named pipe \(FIFO\); azkeep refuses/);
      assert.ok(Date.now() - t0 < 10_000, "took too long");
    }
    rmSync(sealed);
    writeFileSync(sealed, good, { mode: 0o600 });
    assert.match(await cachedToken(m), /^eyJ/);
  });

  it("tokens.sealed or profile.json as a symlink (to a file of the attacker's) is refused", async () => {
    using m = s.machine();
    for (const name of ["tokens.sealed", "profile.json"]) {
      const path = join(m.h.configDir, name);
      renameSync(path, `${path}.keep`);
      symlinkSync(`${path}.keep`, path);
      const r = await m.azkeep(["account", "get-access-token"]);
      assertOneError(r, new RegExp(`${name.replace(".", "\\.")} is a symbolic link`));
      rmSync(path);
      renameSync(`${path}.keep`, path);
    }
    assert.match(await cachedToken(m), /^eyJ/);
  });

  it("store.lock as a FIFO or a dangling symlink: writes fail at once, not after 60 s", async () => {
    using m = s.machine();
    const lock = join(m.h.configDir, "store.lock");
    for (const plant of [() => mkfifo(lock), () => symlinkSync("/nonexistent/azkeep-lock", lock)]) {
      plant();
      const t0 = Date.now();
      const r = await m.azkeep(["store", "migrate", "--to", "passphrase"], { timeoutMs: 20_000 });
      assertOneError(r, /store\.lock is (a named pipe|a symbolic link)/);
      assert.match(r.stderr, /rm .*store\.lock/);
      assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
      rmSync(lock);
    }
    assert.match(await cachedToken(m), /^eyJ/);
  });

  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    it(`a write waiting on a live lock ends on ${sig}: exit 130, one ERROR, the store intact`, async () => {
      using m = s.machine();
      const lock = join(m.h.configDir, "store.lock");
      // Held by a live process (this test runner), with a fresh heartbeat: the waiter must wait.
      writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: "held", since: 0 }), {
        mode: 0o600,
      });
      const child = spawn(process.execPath, [BIN, "store", "migrate", "--to", "passphrase"], {
        env: m.env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      const guard = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 30_000);
      try {
        // Waiting: the lock is still ours and the child is alive after a second.
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(child.exitCode, null, `ended before the signal: ${stderr}`);
        const t0 = Date.now();
        child.kill(sig);
        const code = await exited;
        const took = Date.now() - t0;
        assertOneError({ code, stdout: "", stderr, noise: "" }, /Interrupted/, 130);
        assert.ok(took < 2000, `took ${took} ms after ${sig}`);
      } finally {
        clearTimeout(guard);
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      assert.equal(JSON.parse(readFileSync(lock, "utf8")).token, "held", "the other's lock was touched");
      rmSync(lock);
      assert.match(await cachedToken(m), /^eyJ/);
    });
  }

  it("a 1 GiB tokens.sealed is refused by its size, without reading it", async () => {
    using m = s.machine();
    const sealed = join(m.h.configDir, "tokens.sealed");
    renameSync(sealed, `${sealed}.keep`);
    writeFileSync(sealed, "", { mode: 0o600 });
    truncateSync(sealed, 1 << 30); // sparse: costs no disk
    // The memory a reader may use is capped well under the file's size.
    const r = await m.azkeep(["account", "get-access-token"], { timeoutMs: 20_000 });
    assertOneError(r, /tokens\.sealed is 1073741824 bytes, over the \d+-byte limit/);
    if (hasCommand("prlimit")) {
      const capped = await run(
        ["prlimit", `--data=${400 * 1024 * 1024}`, process.execPath, BIN, "account", "get-access-token"],
        { env: m.env, timeoutMs: 20_000 },
      );
      assertOneError(capped, /over the \d+-byte limit/);
    }
    rmSync(sealed);
    renameSync(`${sealed}.keep`, sealed);
    assert.match(await cachedToken(m), /^eyJ/);
  });

  it("a folder where a file should be, and a file where the folder should be: one ERROR each", async () => {
    using m = s.machine();
    const sealed = join(m.h.configDir, "tokens.sealed");
    renameSync(sealed, `${sealed}.keep`);
    mkdirSync(sealed, { mode: 0o700 });
    assertOneError(await m.azkeep(["account", "get-access-token"]), /tokens\.sealed is a folder/);
    rmSync(sealed, { recursive: true });
    renameSync(`${sealed}.keep`, sealed);
    const real = `${m.h.configDir}.real`;
    renameSync(m.h.configDir, real);
    writeFileSync(m.h.configDir, "not a folder", { mode: 0o600 });
    assertOneError(
      await m.azkeep(["account", "get-access-token"]),
      /azkeep is a file, not a folder; azkeep refuses/,
    );
    rmSync(m.h.configDir);
    renameSync(real, m.h.configDir);
    assert.ok(existsSync(sealed));
    assert.match(await cachedToken(m), /^eyJ/);
  });
});
