/**
 * Issue 8 item 8, the attack as found, through the built CLI (`bin/azkeep.js`): a separate
 * process with no key copies `tokens.sealed` + `profile.json`; the user logs out; the copies are
 * put back. With the key in the OS keyring (a real gnome-keyring under dbus-run-session) or the
 * kernel keyring (`keyctl session`), the provider keeps the store's generation beside the key,
 * so the next `get-access-token` refuses with one `ERROR:` line naming the rollback (exit 1,
 * `store_tampered`), writes nothing and leaves the files as they are; a write is refused too.
 * The person recovers deliberately: `azkeep store repair --accept-rollback` (the old sign-in
 * comes back, sealed as the newest), or moving both files aside and signing in again. A store
 * whose key holds no generation yet (written before this version) is upgraded silently.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import type { Emulator } from "../../src/emulator/index.js";
import { requireTool } from "../helpers/require-tool.js";
import { BIN, freshHome, inGnomeKeyring, inKeyctlSession, run, type Ran } from "../e2e/helpers.js";
import { CONTOSO, SP, emulator } from "../signin/emulator.js";
import { assertOneError } from "./cli-env.js";
import { forgetKeyutilsKey } from "./run-child.js";

const ROLLBACK =
  /^ERROR: .*tokens\.sealed is older than the last token store azkeep wrote \(generation \d+; the (keyring|keyutils) key provider recorded \d+\)/;

/** The attacker: a separate process, outside any keyring session, with no key — it copies files. */
async function attackerCopies(from: string[], toDir: string): Promise<void> {
  const script = `const fs=require("fs");const [to,...files]=process.argv.slice(1);for(const f of files)fs.copyFileSync(f,require("path").join(to,require("path").basename(f)));`;
  const r = await run([process.execPath, "-e", script, toDir, ...from], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 0, r.stderr);
}

/** The store's files (the agent's release log, which records each request, aside). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort())
    if (!f.startsWith("release.log")) out[f] = readFileSync(join(dir, f)).toString("base64");
  return out;
}

type Wrap = (argv: string[]) => string[];

describe(
  "rollback of tokens.sealed + profile.json is refused where the key provider keeps a counter (e2e)",
  {
    timeout: 300_000,
  },
  () => {
    let emu: Emulator;
    before(async () => (emu = await emulator({ https: true })));
    after(async () => emu?.close());

    async function machine(t: TestContext, provider: "keyring" | "keyutils" | "insecure-file", wrap: Wrap) {
      const h = freshHome(`azkeep-rollback-${provider}-`, { AZKEEP_STORE_PROVIDER: provider });
      t.after(() => h[Symbol.dispose]());
      const env = { ...emu.env, ...h.env };
      const azkeep = (args: string[], input?: string): Promise<Ran> =>
        run(wrap([process.execPath, BIN, ...args]), {
          env,
          timeoutMs: 60_000,
          ...(input !== undefined ? { input } : {}),
        });
      const ok = async (args: string[], input?: string) => {
        const r = await azkeep(args, input);
        assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}${r.noise}`);
        return r;
      };
      const login = () =>
        ok(
          ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
          SP.secret,
        );
      await login();
      const dir = h.configDir;
      const keyId = (
        JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as {
          store: { key: { keyId: string } };
        }
      ).store.key.keyId;
      // Never leave a key in the user's persistent kernel keyring, even when an assertion fails.
      if (provider === "keyutils") t.after(() => forgetKeyutilsKey(keyId));
      const token = async () =>
        (await ok(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"])).stdout.trim();
      const stash = join(h.home, "attacker");
      mkdirSync(stash, { mode: 0o700 });
      const files = [join(dir, "tokens.sealed"), join(dir, "profile.json")];
      const takeCopies = () => attackerCopies(files, stash);
      const putBack = () =>
        attackerCopies(
          files.map((f) => join(stash, f.slice(dir.length + 1))),
          dir,
        );
      return { h, dir, keyId, azkeep, ok, login, token, takeCopies, putBack };
    }

    /** The attack, the refusal, and the deliberate recovery; then the protection still holds. */
    async function attack(t: TestContext, provider: "keyring" | "keyutils", wrap: Wrap) {
      const m = await machine(t, provider, wrap);
      assert.match(await m.token(), /^ey/);
      await m.takeCopies();
      await m.ok(["logout"]);
      const gone = await m.azkeep(["account", "get-access-token"]);
      assert.equal(gone.code, 1, "signed out");
      await m.putBack();
      const before = snapshot(m.dir);

      for (const args of [["account", "get-access-token"], ["account", "list"], ["logout"]]) {
        const r = await m.azkeep(args);
        assertOneError(r, ROLLBACK);
        assert.match(r.stderr, /azkeep store repair --accept-rollback/, "the next step");
        assert.equal(r.stdout, "");
        assert.deepEqual(snapshot(m.dir), before, `${args.join(" ")}: nothing written, moved or removed`);
      }

      // Recovery on purpose: the older store is used, and sealed as the newest.
      const repaired = await m.ok(["store", "repair", "--accept-rollback"]);
      const report = JSON.parse(repaired.stdout) as {
        rollbackAccepted?: { generation: number; recorded: number };
      };
      assert.ok(report.rollbackAccepted, repaired.stdout);
      assert.ok(report.rollbackAccepted.generation < report.rollbackAccepted.recorded);
      assert.match(await m.token(), /^ey/, "the sign-in in the older copy is back");

      // The protection holds after the recovery: sign out again, put the same copy back.
      await m.ok(["logout"]);
      await m.putBack();
      assertOneError(await m.azkeep(["account", "get-access-token"]), ROLLBACK);
      return m;
    }

    it("keyring (gnome-keyring under dbus-run-session)", async (t) => {
      if (!requireTool(t, "dbus-run-session", "apt-get install dbus")) return;
      if (!requireTool(t, "gnome-keyring-daemon", "apt-get install gnome-keyring")) return;
      await attack(t, "keyring", inGnomeKeyring);
    });

    it("keyutils (keyctl session); moving both files aside and signing in again also recovers", async (t) => {
      if (!requireTool(t, "keyctl", "apt-get install keyutils")) return;
      const m = await attack(t, "keyutils", inKeyctlSession);
      // The other way out, as the message says: move both aside, sign in again.
      const r = await m.azkeep(["account", "get-access-token"]);
      const mv = /`(mv [^`]*)`/.exec(r.stderr)?.[1];
      assert.ok(mv, r.stderr);
      const moved = await run(["sh", "-c", mv], { env: m.h.env, timeoutMs: 20_000 });
      assert.equal(moved.code, 0, moved.stderr);
      await m.login();
      assert.match(await m.token(), /^ey/);
    });

    it("insecure-file: no place outside the folder — a running agent refuses the old copy; a new process cannot tell", async (t) => {
      const m = await machine(t, "insecure-file", (argv) => argv);
      const started = JSON.parse((await m.ok(["agent", "start", "--policy", "open"])).stdout) as {
        pid: number;
        vaultPid?: number;
      };
      t.after(() => {
        for (const pid of [started.pid, started.vaultPid])
          try {
            if (pid) process.kill(pid, "SIGKILL");
          } catch {
            /* gone */
          }
      });
      assert.match(await m.token(), /^ey/);
      await m.takeCopies();
      await m.ok(["logout"]); // through the agent: its vault seals the newer generation
      await m.putBack();
      const before = snapshot(m.dir);
      const r = await m.azkeep(["account", "get-access-token"]);
      assertOneError(
        r,
        /^ERROR: .*tokens\.sealed is older than the last token store azkeep wrote \(generation \d+; this process, the azkeep agent, opened \d+ before\)/,
      );
      assert.match(r.stderr, /azkeep agent stop && azkeep agent start/);
      assert.deepEqual(snapshot(m.dir), before, "nothing written");
      // The documented limit: a process that did not see the newer file opens the old copy.
      const direct = await run([process.execPath, BIN, "account", "get-access-token", "-o", "none"], {
        env: { ...emu.env, ...m.h.env, AZKEEP_AGENT: "off" },
        timeoutMs: 60_000,
      });
      assert.equal(direct.code, 0, direct.stderr);
      await m.ok(["agent", "stop"]);
    });

    it("keyutils: a key that holds no generation yet (an older azkeep) opens silently and gets one", async (t) => {
      if (!requireTool(t, "keyctl", "apt-get install keyutils")) return;
      const m = await machine(t, "keyutils", inKeyctlSession);
      const key = `%user:azkeep:${m.keyId}`;
      const keyctl = (script: string) =>
        run(inKeyctlSession(["sh", "-c", `keyctl get_persistent @s >/dev/null && ${script}`]), {
          env: m.h.env,
          timeoutMs: 20_000,
        });
      const size = async () => Number((await keyctl(`keyctl pipe ${key} | wc -c`)).stdout.trim());
      assert.equal(await size(), 44, "key ‖ AZG1 ‖ generation");
      // As an older azkeep left it: the 32-byte key alone.
      const strip = await keyctl(`keyctl pipe ${key} | head -c 32 | keyctl pupdate ${key}`);
      assert.equal(strip.code, 0, strip.stderr);
      assert.equal(await size(), 32);
      const r = await m.azkeep(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^ey/);
      // (`keyctl session` itself says which keyring it joined.)
      assert.equal(r.stderr.replace(/^Joined session keyring: \d+\n/m, ""), "", "silently");
      assert.equal(await size(), 44, "the generation is kept from now on");
    });
  },
);
