/**
 * The seed scenario of the security model: a program copies the config folder. The copy,
 * opened in a fresh HOME (another machine, another user), must fail with a clear "sign in"
 * error and print no token. And after storing tokens, no token or secret string may appear in
 * the config folder, the temp folders or the logs.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requireTool } from "../helpers/require-tool.js";
import { ROOT, bundleWriter } from "./bundle.js";
import { tempStoreDir } from "./helpers.js";
import { runProcess } from "../helpers/process.js";
import { forgetKeyutilsKey, underGnomeKeyring, underKeyctlSession } from "./run-child.js";

type Opened = { ok: boolean; code?: string; message?: string; hint?: string };

function needles() {
  const r = () => randomBytes(12).toString("hex");
  return { refreshToken: `0.ARt-${r()}`, accessToken: `eyJ0eXAi.${r()}.sig`, clientSecret: `cs~${r()}` };
}

function filesUnder(dir: string, since = 0, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) filesUnder(p, since, out);
    else if (st.isFile() && st.mtimeMs >= since && st.size < 20 * 1024 * 1024) out.push(p);
  }
  return out;
}

/** World-readable (folders enterable): for the copy another user runs. */
function chmodTree(path: string): void {
  const st = statSync(path);
  chmodSync(path, st.isDirectory() ? 0o755 : 0o644);
  if (st.isDirectory()) for (const n of readdirSync(path)) chmodTree(join(path, n));
}

function chownTree(path: string, uid: number): void {
  chownSync(path, uid, uid);
  if (statSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n), uid);
}

/** Reads files that may vanish meanwhile (other tests' temp files): a vanished file holds nothing. */
function contents(files: string[]): { label: string; text: Buffer }[] {
  const out: { label: string; text: Buffer }[] = [];
  for (const f of files) {
    try {
      out.push({ label: f, text: readFileSync(f) });
    } catch {
      /* removed or unreadable since listing */
    }
  }
  return out;
}

function assertNowhere(secrets: string[], places: { label: string; text: Buffer | string }[]) {
  for (const { label, text } of places)
    for (const s of secrets) assert.equal(Buffer.from(text).indexOf(s), -1, `${s} found in ${label}`);
}

describe("a copied config folder, and secrets at rest", () => {
  let writer: Awaited<ReturnType<typeof bundleWriter>>;
  before(async () => (writer = await bundleWriter()));
  after(() => writer[Symbol.dispose]());

  const baseEnv = (home: string, extra: Record<string, string> = {}) => {
    const env: Record<string, string | undefined> = {
      ...process.env,
      HOME: home,
      AZKEEP_CONFIG_DIR: join(home, ".config", "azkeep"),
      TMPDIR: join(home, "tmp"),
      AZKEEP_TEST_DEBUG: "1",
      ...extra,
    };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    delete env.XDG_RUNTIME_DIR;
    delete env.NODE_TEST_CONTEXT;
    mkdirSync(join(home, "tmp"), { recursive: true });
    return env;
  };
  const copyHome = (from: string, to: string) =>
    cpSync(join(from, ".config", "azkeep"), join(to, ".config", "azkeep"), { recursive: true });

  it("keyring: the copy in a fresh HOME (its own gnome-keyring) says to sign in, prints no token", async (t) => {
    if (!requireTool(t, "dbus-run-session", "apt-get install dbus")) return;
    if (!requireTool(t, "gnome-keyring-daemon", "apt-get install gnome-keyring")) return;
    using a = tempStoreDir("azkeep-home-a-");
    using b = tempStoreDir("azkeep-home-b-");
    const x = needles();
    const started = Date.now();
    const envA = baseEnv(a.root, { AZKEEP_STORE_PROVIDER: "keyring" });
    const [cmd, args] = underGnomeKeyring([process.execPath, writer.path, "store", JSON.stringify(x)]);
    const w = await runProcess(cmd, args, { env: envA });
    assert.equal(w.code, 0, w.stdout + w.stderr);
    // Still opens at home (same keyring file, new session), so the failure below is the copy's.
    const [c2, a2] = underGnomeKeyring([process.execPath, writer.path, "open"]);
    const home = JSON.parse((await runProcess(c2, a2, { env: envA })).stdout) as Opened;
    assert.equal(home.ok, true, JSON.stringify(home));

    copyHome(a.root, b.root);
    const envB = baseEnv(b.root);
    const [c3, a3] = underGnomeKeyring([process.execPath, writer.path, "open"]);
    const r = await runProcess(c3, a3, { env: envB });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const o = JSON.parse(r.stdout) as Opened;
    assert.equal(o.code, "store_damaged");
    assert.match(o.message!, /key is not in the keyring provider/);
    assert.match(o.hint!, /azkeep login/);
    const s = Object.values(x);
    assertNowhere(s, [
      { label: "stdout/stderr", text: w.stdout + w.stderr + r.stdout + r.stderr },
      ...contents([a.root, b.root].flatMap((d) => filesUnder(d))),
      ...contents(filesUnder(tmpdir(), started)),
    ]);
  });

  it("keyutils: the copy opened by another user (own kernel keyrings) says to sign in", async (t) => {
    if (!requireTool(t, "keyctl", "apt-get install keyutils")) return;
    if (process.getuid?.() !== 0) {
      // CI runs as root: there, not being root means this case would silently never run.
      const why = "needs root to run the reader as another user";
      if (process.env.CI === "true") throw new Error(`${why}, and CI=true must run it`);
      return t.skip(why);
    }
    using a = tempStoreDir("azkeep-home-a-");
    using b = tempStoreDir("azkeep-home-b-");
    // The checkout may sit in a folder other users cannot enter (a `mktemp -d` clone, a 0700
    // home): give the other user its own copy of what it runs — the built library and the
    // writer — in a folder it can read.
    const shipped = mkdtempSync(join(tmpdir(), "azkeep-shipped-"));
    t.after(() => rmSync(shipped, { recursive: true, force: true }));
    cpSync(join(ROOT, "dist"), join(shipped, "dist"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(shipped, "package.json"));
    const theirs = await bundleWriter({ lib: join(shipped, "dist", "lib", "index.js"), outDir: shipped });
    chmodTree(shipped);
    const x = needles();
    const envA = baseEnv(a.root, { AZKEEP_STORE_PROVIDER: "keyutils" });
    const [cmd, args] = underKeyctlSession([process.execPath, writer.path, "store", JSON.stringify(x)]);
    const w = await runProcess(cmd, args, { env: envA });
    assert.equal(w.code, 0, w.stdout + w.stderr);
    const keyId = JSON.parse(readFileSync(join(a.root, ".config/azkeep/config.json"), "utf8")) as {
      store: { key: { keyId: string } };
    };
    // Never leave a key in the user's persistent keyring, even when an assertion below fails.
    t.after(() => forgetKeyutilsKey(keyId.store.key.keyId));

    copyHome(a.root, b.root);
    const nobody = 65534;
    const envB = baseEnv(b.root);
    chownTree(b.root, nobody);
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        import("node:child_process")
          .then(({ spawn }) => {
            const env: Record<string, string> = {};
            for (const [k, v] of Object.entries(envB)) if (v !== undefined) env[k] = v;
            const child = spawn("keyctl", ["session", "-", process.execPath, theirs.path, "open"], {
              env,
              uid: nobody,
              gid: nobody,
              cwd: b.root,
            });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            child.on("error", reject);
            child.on("close", (code) => resolve({ code, stdout, stderr }));
          })
          .catch(reject);
      },
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(r.stdout.startsWith("{"), `the reader did not run as another user: ${r.stdout}${r.stderr}`);
    const o = JSON.parse(r.stdout) as Opened;
    assert.equal(o.code, "store_damaged", JSON.stringify(o));
    assert.match(o.message!, /key is not in the keyutils provider/);
    assert.match(o.hint!, /azkeep login/);
    assertNowhere(Object.values(x), [
      { label: "stdout/stderr", text: w.stdout + w.stderr + r.stdout + r.stderr },
    ]);
  });

  it("passphrase: the copy cannot be opened without the passphrase; no token printed", async () => {
    using a = tempStoreDir("azkeep-home-a-");
    using b = tempStoreDir("azkeep-home-b-");
    const x = needles();
    const envA = baseEnv(a.root, {
      AZKEEP_STORE_PROVIDER: "passphrase",
      AZKEEP_PASSPHRASE: "copy test passphrase",
    });
    const w = await runProcess(process.execPath, [writer.path, "store", JSON.stringify(x)], { env: envA });
    assert.equal(w.code, 0, w.stdout + w.stderr);
    copyHome(a.root, b.root);
    for (const pass of [undefined, "a guessed passphrase"]) {
      const r = await runProcess(process.execPath, [writer.path, "open"], {
        env: baseEnv(b.root, pass ? { AZKEEP_PASSPHRASE: pass } : {}),
      });
      assert.equal(r.code, 1);
      const o = JSON.parse(r.stdout) as Opened;
      assert.equal(o.code, "store_unavailable");
      assert.match(o.message!, /passphrase/);
      assertNowhere(Object.values(x), [{ label: "output", text: r.stdout + r.stderr }]);
    }
    // The folder holds the sealed blob and the key check value, never the passphrase or a token.
    assertNowhere(
      [...Object.values(x), "copy test passphrase"],
      filesUnder(a.root).map((f) => ({ label: f, text: readFileSync(f) })),
    );
  });

  it("insecure-file (the documented weakness): the copy opens — which is why it needs an opt-in", async () => {
    using a = tempStoreDir("azkeep-home-a-");
    using b = tempStoreDir("azkeep-home-b-");
    const x = needles();
    const w = await runProcess(process.execPath, [writer.path, "store", JSON.stringify(x)], {
      env: baseEnv(a.root, { AZKEEP_STORE_PROVIDER: "insecure-file" }),
    });
    assert.equal(w.code, 0, w.stdout + w.stderr);
    assert.match(w.stderr, /WARNING: .*plain file/);
    copyHome(a.root, b.root);
    const r = await runProcess(process.execPath, [writer.path, "open"], { env: baseEnv(b.root) });
    assert.equal((JSON.parse(r.stdout) as Opened).ok, true);
    // Even so, no token is in any file in plain text: the key file holds only the key.
    assertNowhere(
      Object.values(x),
      filesUnder(a.root).map((f) => ({ label: f, text: readFileSync(f) })),
    );
  });
});
