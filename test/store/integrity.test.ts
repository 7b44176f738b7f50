/**
 * Issue 8, items 1: nothing outside the seal steers a secret. Each attack as it was found, with
 * the built CLI: the plain files are edited by a separate process that has no key, a capture
 * server on 127.0.0.1 stands for the attacker, and the command must fail with one `ERROR:`
 * line (exit 1, `store_tampered` / `auth_required`), send nothing anywhere (neither to the
 * capture server nor to the identity provider), and leave the store as it was — the command
 * works again once the user undoes the edit or runs `azkeep store repair`.
 *
 * (a) a custom cloud whose authority is the capture server, set active, and the service
 *     principal's `environmentName` pointed at it;
 * (b) an existing custom cloud's authority changed under a user's refresh token;
 * (c) a subscription's `id`/`tenantId` changed, so that `account show` and the tokens disagreed;
 * and: azkeep's own changes keep working; a cloud re-registered by azkeep with another authority
 * still does not get the credential (the binding); a 0.1 store is upgraded in place.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Emulator } from "../../src/emulator/index.js";
import { seal, unseal } from "../../src/core/store/sealed.js";
import { BIN, runCli, tempHome, type CliResult } from "../helpers/cli.js";
import { runProcess } from "../helpers/process.js";
import { ALICE, CONTOSO, DEV_SUB, SP, emulator } from "../signin/emulator.js";

const ARM_AUDIENCE = "https://management.core.windows.net/";
const GRAPH = "https://graph.microsoft.com//.default";

/** The attacker: a separate process with no key that rewrites a JSON file of the folder. */
async function attackerEdits(file: string, js: string): Promise<void> {
  const script = `const fs=require("fs");const f=process.argv[1];const j=JSON.parse(fs.readFileSync(f,"utf8"));(function(j){${js}})(j);fs.writeFileSync(f,JSON.stringify(j,null,2));`;
  const r = await runProcess(process.execPath, ["-e", script, file], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("ERROR:"));
}

function listFolder(dir: string): string[] {
  return readdirSync(dir).sort();
}

describe(
  "integrity of profile.json and config.json; credentials bound to where they were issued (e2e)",
  {
    timeout: 300_000,
  },
  () => {
    let emu: Emulator;
    let capture: Server;
    let captured: string[];
    let capUrl: string;
    before(async () => {
      emu = await emulator({ https: false });
      captured = [];
      capture = createServer((req, res) => {
        captured.push(`${req.method} ${req.url}`);
        req.resume();
        res.writeHead(500).end();
      });
      await new Promise<void>((r) => capture.listen(0, "127.0.0.1", r));
      capUrl = `http://127.0.0.1:${(capture.address() as AddressInfo).port}`;
    });
    after(async () => {
      await emu?.close();
      await new Promise<void>((r) => (capture ? capture.close(() => r()) : r()));
    });

    /** A HOME with the emulator registered as cloud `Emu`, active, and signed-in accounts. */
    async function setup(who: "sp" | "alice") {
      const h = tempHome();
      const env = {
        ...h.env,
        AZKEEP_STORE_PROVIDER: "passphrase",
        AZKEEP_PASSPHRASE: "integrity test passphrase",
      };
      const cli = (args: string[], input?: string): Promise<CliResult> =>
        runCli(args, { env, timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
      const ok = async (args: string[], input?: string) => {
        const r = await cli(args, input);
        assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
        return r;
      };
      await ok([
        "cloud",
        "register",
        "-n",
        "Emu",
        "--endpoint-resource-manager",
        `${emu.urls.http}/`,
        "--endpoint-active-directory",
        emu.urls.http,
        "--endpoint-active-directory-resource-id",
        ARM_AUDIENCE,
      ]);
      await ok(["cloud", "set", "-n", "Emu"]);
      if (who === "sp")
        await ok(
          ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
          SP.secret,
        );
      else await ok(["login", "-u", ALICE.upn, "--password-stdin"], ALICE.password);
      const dir = h.env.AZKEEP_CONFIG_DIR!;
      const files = {
        dir,
        profile: join(dir, "profile.json"),
        config: join(dir, "config.json"),
        sealed: join(dir, "tokens.sealed"),
      };
      // The user's backup, to undo the attack with.
      copyFileSync(files.profile, `${h.home}/profile.bak`);
      copyFileSync(files.config, `${h.home}/config.bak`);
      const restore = () => {
        copyFileSync(`${h.home}/profile.bak`, files.profile);
        copyFileSync(`${h.home}/config.bak`, files.config);
      };
      return { h, env, cli, ok, files, restore };
    }

    async function assertRefused(
      r: CliResult,
      sealedBefore: Buffer,
      folderBefore: string[],
      s: { files: { sealed: string; dir: string } },
      tokenRequestsBefore: number,
      message: RegExp,
    ) {
      assert.equal(r.code, 1, r.stderr);
      const errs = errorLines(r.stderr);
      assert.equal(errs.length, 1, r.stderr);
      assert.match(errs[0]!, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.equal(r.stdout, "");
      assert.deepEqual(captured, [], "nothing reached the capture server");
      assert.equal(
        await emu.control.countRequests({ endpoint: "token" }),
        tokenRequestsBefore,
        "no token request",
      );
      assert.ok(readFileSync(s.files.sealed).equals(sealedBefore), "tokens.sealed untouched");
      assert.deepEqual(listFolder(s.files.dir), folderBefore, "nothing moved aside or added");
    }

    it("(a) an added cloud set active, the SP's environmentName pointed at it: nothing is posted there", async () => {
      const s = await setup("sp");
      try {
        captured.length = 0;
        const sealedBefore = readFileSync(s.files.sealed);
        const folderBefore = listFolder(s.files.dir);
        await attackerEdits(
          s.files.config,
          `j.cloud.customClouds.push({name:"Evil",endpoints:{activeDirectory:${JSON.stringify(capUrl)},resourceManager:${JSON.stringify(capUrl + "/")},activeDirectoryResourceId:${JSON.stringify(ARM_AUDIENCE)}},suffixes:{},profile:"latest",builtin:false}); j.cloud.activeCloud="Evil";`,
        );
        await attackerEdits(s.files.profile, `for (const e of j.subscriptions) e.environmentName="Evil";`);
        const tokens = await emu.control.countRequests({ endpoint: "token" });
        const r = await s.cli(["account", "get-access-token", "--scope", GRAPH]);
        await assertRefused(
          r,
          sealedBefore,
          folderBefore,
          s,
          tokens,
          /^ERROR: profile\.json and config\.json were changed outside azkeep \(profile\.json: subscription '.*' of 5e5e5e5e-.*: environmentName Emu → Evil; config\.json: active cloud Emu → Evil; custom cloud Evil added\); azkeep does not use them and sent nothing\.$/,
        );
        assert.match(r.stderr, /azkeep store repair/);
        // The shim and `account show` refuse the same way.
        const show = await s.cli(["account", "show"]);
        assert.equal(show.code, 1);
        assert.equal(errorLines(show.stderr).length, 1);
        const login = await s.cli(
          ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
          SP.secret,
        );
        assert.equal(login.code, 1, "a new sign-in does not go to the edited cloud either");
        assert.deepEqual(captured, []);
        // The user repairs from the sealed copy: the SP works again, against the emulator.
        const repair = await s.ok(["store", "repair"]);
        assert.match(repair.stdout, /profile\.json/);
        const again = await s.ok(["account", "get-access-token", "--scope", GRAPH]);
        assert.ok((JSON.parse(again.stdout) as { accessToken: string }).accessToken.length > 20);
        assert.deepEqual(captured, []);
        assert.equal(JSON.parse(readFileSync(s.files.config, "utf8")).cloud.activeCloud, "Emu");
      } finally {
        s.h[Symbol.dispose]();
      }
    });

    it("(a') only the SP's environmentName moved to a cloud that azkeep itself registered: refused by the binding", async () => {
      const s = await setup("sp");
      try {
        captured.length = 0;
        // Legitimate azkeep changes: a second cloud registered and set, then back; these re-seal.
        await s.ok([
          "cloud",
          "register",
          "-n",
          "Evil",
          "--endpoint-resource-manager",
          `${capUrl}/`,
          "--endpoint-active-directory",
          capUrl,
          "--endpoint-active-directory-resource-id",
          ARM_AUDIENCE,
        ]);
        await s.ok(["cloud", "set", "-n", "Evil"]);
        await s.ok(["cloud", "set", "-n", "Emu"]);
        assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
        // Now azkeep unregisters Emu and registers it again pointing at the capture server.
        await s.ok(["cloud", "set", "-n", "Evil"]);
        await s.ok(["cloud", "unregister", "-n", "Emu"]);
        await s.ok([
          "cloud",
          "register",
          "-n",
          "Emu",
          "--endpoint-resource-manager",
          `${capUrl}/`,
          "--endpoint-active-directory",
          capUrl,
          "--endpoint-active-directory-resource-id",
          ARM_AUDIENCE,
        ]);
        await s.ok(["cloud", "set", "-n", "Emu"]);
        const sealedBefore = readFileSync(s.files.sealed);
        const folderBefore = listFolder(s.files.dir);
        const tokens = await emu.control.countRequests({ endpoint: "token" });
        const r = await s.cli(["account", "get-access-token", "--scope", GRAPH]);
        await assertRefused(
          r,
          sealedBefore,
          folderBefore,
          s,
          tokens,
          /^ERROR: The sign-in of 5e5e5e5e-\S+ was issued elsewhere than cloud 'Emu' now says \(authority http:\/\/127\.0\.0\.1:\d+ \(was http:\/\/127\.0\.0\.1:\d+\), resourceManager .*\); azkeep sends a credential only where it was issued, and sent nothing\.$/,
        );
      } finally {
        s.h[Symbol.dispose]();
      }
    });

    it("(b) an existing custom cloud's authority changed: the user's refresh token is not sent there", async () => {
      const s = await setup("alice");
      try {
        captured.length = 0;
        const sealedBefore = readFileSync(s.files.sealed);
        const folderBefore = listFolder(s.files.dir);
        await attackerEdits(
          s.files.config,
          `const c=j.cloud.customClouds.find(c=>c.name==="Emu"); c.endpoints.activeDirectory=${JSON.stringify(capUrl)};`,
        );
        const tokens = await emu.control.countRequests({ endpoint: "token" });
        const r = await s.cli(["account", "get-access-token", "--scope", GRAPH]);
        await assertRefused(
          r,
          sealedBefore,
          folderBefore,
          s,
          tokens,
          /^ERROR: config\.json was changed outside azkeep \(custom cloud Emu: activeDirectory http:\/\/127\.0\.0\.1:\d+ → http:\/\/127\.0\.0\.1:\d+\); azkeep does not use it and sent nothing\.$/,
        );
        // Also through the az shim.
        const shim = join(BIN, "..", "..", "shim", "az");
        const viaShim = await runProcess(shim, ["account", "get-access-token", "--scope", GRAPH], {
          env: { ...process.env, ...s.env },
          timeoutMs: 60_000,
        });
        assert.equal(viaShim.code, 1, viaShim.stderr);
        assert.equal(errorLines(viaShim.stderr).length, 1, viaShim.stderr);
        assert.deepEqual(captured, []);
        s.restore();
        await s.ok(["account", "get-access-token", "--scope", GRAPH]);
        assert.deepEqual(captured, []);
      } finally {
        s.h[Symbol.dispose]();
      }
    });

    it("(c) a subscription's id/tenantId edited: account show, tokens and the shim all refuse", async () => {
      const s = await setup("alice");
      try {
        const sealedBefore = readFileSync(s.files.sealed);
        const folderBefore = listFolder(s.files.dir);
        const shown = JSON.parse((await s.ok(["account", "show"])).stdout) as { id: string };
        await attackerEdits(
          s.files.profile,
          `const e=j.subscriptions.find(e=>e.isDefault); e.id="deadbeef-0000-4000-8000-000000000000"; e.tenantId="22222222-2222-2222-2222-222222222222";`,
        );
        const tokens = await emu.control.countRequests({ endpoint: "token" });
        const show = await s.cli(["account", "show"]);
        await assertRefused(
          show,
          sealedBefore,
          folderBefore,
          s,
          tokens,
          /^ERROR: profile\.json was changed outside azkeep \(subscription '.*' of alice@contoso\.onmicrosoft\.com: id c0ffee00-\S+ → deadbeef-\S+, tenantId 1111\S+ → 2222\S+\); azkeep does not use it and sent nothing\.$/,
        );
        const r = await s.cli(["account", "get-access-token", "--scope", GRAPH]);
        await assertRefused(
          r,
          sealedBefore,
          folderBefore,
          s,
          tokens,
          /^ERROR: profile\.json was changed outside azkeep/,
        );
        s.restore();
        const back = JSON.parse((await s.ok(["account", "show"])).stdout) as { id: string };
        assert.equal(back.id, shown.id);
        await s.ok(["account", "get-access-token"]);
        // A legitimate change of the default by azkeep re-seals and keeps working.
        await s.ok(["account", "set", "-s", DEV_SUB]);
        assert.equal((JSON.parse((await s.ok(["account", "show"])).stdout) as { id: string }).id, DEV_SUB);
      } finally {
        s.h[Symbol.dispose]();
      }
    });

    it("issue 8.2: config.json re-naming the key provider (passphrase → keyutils) is refused, not a reason to replace the store", async () => {
      const s = await setup("alice");
      try {
        const sealedBefore = readFileSync(s.files.sealed);
        assert.equal(sealedBefore[4], 2, "format version 2: the header names the provider");
        const folderBefore = listFolder(s.files.dir);
        await attackerEdits(s.files.config, `j.store.key.provider = "keyutils";`);
        // The user, without the passphrase in the environment now (keyutils would not ask).
        const { AZKEEP_PASSPHRASE: _p, AZKEEP_STORE_PROVIDER: _sp, ...userEnv } = s.env;
        const user = (args: string[], input?: string) =>
          runCli(args, { env: userEnv, timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
        const message =
          /^ERROR: config\.json names the keyutils key provider for the token store, but .*tokens\.sealed was sealed under the passphrase provider: config\.json was changed outside azkeep\./;
        for (const args of [
          ["account", "get-access-token"],
          ["login", "-u", ALICE.upn, "--password-stdin"],
        ]) {
          const tokens = await emu.control.countRequests({ endpoint: "token" });
          const r = await user(args, args[0] === "login" ? ALICE.password : undefined);
          await assertRefused(r, sealedBefore, folderBefore, s, tokens, message);
          assert.match(r.stderr, /Set "provider" back to "passphrase"/);
        }
        s.restore();
        await s.ok(["account", "get-access-token"]);
      } finally {
        s.h[Symbol.dispose]();
      }
    });

    it("an outside edit of store.mode (agent-only mode turned off) or agent.* is named (store_tampered), not obeyed", async () => {
      const s = await setup("sp");
      const pids: number[] = [];
      // azkeep's own writer: `agent start` seals the settings; the agent is stopped at once.
      const agentStart = async (flag: string) => {
        const r = await s.ok(["agent", "start", flag, "--policy", "open"]);
        const st = JSON.parse(r.stdout) as { pid?: number; vaultPid?: number };
        for (const pid of [st.pid, st.vaultPid]) if (pid) pids.push(pid);
        await s.ok(["agent", "stop"]);
        await gone(pids);
      };
      try {
        await agentStart("--agent-only");
        const on = await s.cli(["account", "get-access-token"]);
        assert.equal(on.code, 1);
        assert.match(on.stderr, /^ERROR: The token store is in agent-only mode and no azkeep agent runs\./);
        captured.length = 0;
        const sealedBefore = readFileSync(s.files.sealed);
        const folderBefore = listFolder(s.files.dir);
        for (const edit of [`j.store.mode = "direct";`, `delete j.store.mode;`]) {
          s.restore();
          await attackerEdits(s.files.config, edit);
          const tokens = await emu.control.countRequests({ endpoint: "token" });
          for (const args of [
            ["account", "get-access-token", "--scope", GRAPH],
            ["account", "show"],
          ]) {
            const r = await s.cli(args);
            await assertRefused(
              r,
              sealedBefore,
              folderBefore,
              s,
              tokens,
              /^ERROR: config\.json was changed outside azkeep \(agent-only mode turned off\); azkeep does not use it and sent nothing\.$/,
            );
            assert.match(r.stderr, /azkeep store repair.*azkeep agent start --agent-only/);
          }
        }
        // `store repair` puts the sealed mode back: agent-only again.
        const repair = await s.ok(["store", "repair"]);
        assert.match(repair.stdout, /config\.json/);
        assert.equal(
          (JSON.parse(readFileSync(s.files.config, "utf8")) as { store: { mode?: string } }).store.mode,
          "agent-only",
        );
        // The person turns it off with azkeep (it opens the store: the passphrase is at hand).
        await agentStart("--no-agent-only");
        await s.ok(["account", "get-access-token"]);
        // agent.*: an auto-started agent kept unlocked longer by an outside edit is named too.
        await attackerEdits(s.files.config, `j.agent = { ...j.agent, maxMs: 31536000000 };`);
        const r = await s.cli(["account", "get-access-token"]);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(errorLines(r.stderr).length, 1, r.stderr);
        assert.match(
          r.stderr,
          /^ERROR: config\.json was changed outside azkeep \(agent\.maxMs unset → 31536000000\)/,
        );
      } finally {
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            /* gone */
          }
        }
        s.h[Symbol.dispose]();
      }
    });

    it("a 0.1 store (no mirror, no bindings) is upgraded on first open; an inconsistent one refuses that credential", async () => {
      const s = await setup("alice");
      try {
        // Play azkeep 0.1: re-seal the secrets without the mirror and the bindings (insecure-file
        // would be simplest; here the test derives nothing: it uses a store written with the key).
        const h2 = tempHome();
        const env = { ...h2.env, AZKEEP_STORE_PROVIDER: "insecure-file" };
        const cli = (args: string[], input?: string) =>
          runCli(args, { env, timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
        for (const args of [
          [
            "cloud",
            "register",
            "-n",
            "Emu",
            "--endpoint-resource-manager",
            `${emu.urls.http}/`,
            "--endpoint-active-directory",
            emu.urls.http,
            "--endpoint-active-directory-resource-id",
            ARM_AUDIENCE,
          ],
          ["cloud", "set", "-n", "Emu"],
        ])
          assert.equal((await cli(args)).code, 0);
        assert.equal((await cli(["login", "-u", ALICE.upn, "--password-stdin"], ALICE.password)).code, 0);
        const dir = h2.env.AZKEEP_CONFIG_DIR!;
        const key = readFileSync(join(dir, "tokens.key"));
        const rawKey = decodeKey(key);
        void BIN;
        const sealedPath = join(dir, "tokens.sealed");
        const downgrade = () => {
          const raw = readFileSync(sealedPath);
          const secrets = JSON.parse(unseal(raw, () => rawKey).toString("utf8")) as Record<
            string,
            unknown
          > & {
            refreshTokens: Record<string, unknown>[];
            servicePrincipals: Record<string, unknown>[];
          };
          delete secrets.mirror;
          delete secrets.generation;
          for (const rt of secrets.refreshTokens) delete rt.bound;
          for (const sp of secrets.servicePrincipals) delete sp.bound;
          const kid = raw.subarray(5, 21);
          const out = seal(Buffer.from(JSON.stringify(secrets)), rawKey, kid, Buffer.alloc(12, 7));
          require0600Write(sealedPath, out);
        };
        downgrade();
        const r = await cli(["account", "get-access-token", "--scope", GRAPH]);
        assert.equal(r.code, 0, r.stderr);
        const after = JSON.parse(unseal(readFileSync(sealedPath), () => rawKey).toString("utf8")) as {
          mirror?: unknown;
          refreshTokens: { bound?: { via: string; authority: string } }[];
        };
        assert.ok(after.mirror, "the mirror was sealed on first open");
        assert.equal(after.refreshTokens[0]?.bound?.via, "upgrade");
        assert.equal(after.refreshTokens[0]?.bound?.authority, emu.urls.http.toLowerCase());
        // Inconsistent: config.json's cloud was edited before the upgrade (0.1 had no MAC).
        downgrade();
        await attackerEdits(
          join(dir, "config.json"),
          `const c=j.cloud.customClouds.find(c=>c.name==="Emu"); c.endpoints.activeDirectory=${JSON.stringify(capUrl)};`,
        );
        captured.length = 0;
        const bad = await cli(["account", "get-access-token", "--scope", "https://vault.azure.net/.default"]);
        assert.equal(bad.code, 1, bad.stderr);
        assert.equal(errorLines(bad.stderr).length, 1, bad.stderr);
        assert.match(
          bad.stderr,
          /^ERROR: The sign-in of alice@contoso\.onmicrosoft\.com was issued elsewhere than cloud 'Emu' now says \(authority http:\/\/127\.0\.0\.1:\d+ \(was 127\.0\.0\.1:\d+\)\)/m,
        );
        assert.deepEqual(captured, []);
        h2[Symbol.dispose]();
      } finally {
        s.h[Symbol.dispose]();
      }
    });
  },
);

/** tokens.key of the insecure-file provider: `{ keys: { <kid hex>: <base64> } }`. */
function decodeKey(file: Buffer): Buffer {
  const j = JSON.parse(file.toString("utf8")) as { keys: Record<string, string> };
  return Buffer.from(Object.values(j.keys)[0]!, "base64");
}

/** Waits (10 s at most) until every pid is gone. */
async function gone(pids: number[]): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 200 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
}

function require0600Write(path: string, data: Buffer): void {
  writeFileSync(path, data, { mode: 0o600 });
}
