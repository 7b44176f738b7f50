import assert from "node:assert/strict";
import { chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createNodeContext } from "../../src/core/context.js";
import { openStore } from "../../src/core/store/index.js";
import { BIN, runCli, tempHome } from "../helpers/cli.js";
import { requireTool } from "../helpers/require-tool.js";
import { signIn } from "./contract.js";
import { runProcess } from "../helpers/process.js";
import { forgetKeyutilsKey, underKeyctlSession } from "./run-child.js";

async function seed(env: Record<string, string>, secret: string) {
  const store = await openStore(createNodeContext({ env, write: () => {} }));
  await store.update((s) => signIn(s, secret));
}

interface Status {
  provider: string;
  keyAvailable?: boolean | null;
  files: { path: string; mode: string; exists: boolean }[];
  warnings: string[];
  protection: { file: string; protectedBy: string }[];
}

describe("azkeep store status / migrate", () => {
  it("status before anything is stored: provider none, exit 0", async () => {
    using home = tempHome();
    const r = await runCli(["store", "status", "-o", "json"], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    const st = JSON.parse(r.stdout) as Status;
    assert.equal(st.provider, "none");
    assert.match(st.protection[0]!.protectedBy, /first sign-in/);
  });

  it("status shows provider, modes, what protects what; warns about insecure-file and bad modes", async () => {
    using home = tempHome();
    await seed({ ...home.env, AZKEEP_STORE_PROVIDER: "insecure-file" }, "rt-cli-secret-1");
    chmodSync(join(home.env.AZKEEP_CONFIG_DIR!, "profile.json"), 0o644);
    const r = await runCli(["store", "status"], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    const st = JSON.parse(r.stdout) as Status;
    assert.equal(st.provider, "insecure-file");
    assert.equal(st.keyAvailable, true);
    assert.ok(st.files.some((f) => f.path.endsWith("tokens.sealed") && f.mode === "0600"));
    assert.match(r.stderr, /WARNING: .*plain file/);
    assert.match(r.stderr, /WARNING: .*profile\.json is accessible by other users.*chmod 600/);
    assert.doesNotMatch(r.stdout + r.stderr, /rt-cli-secret-1/);
    const t = await runCli(["store", "status", "-o", "table", "--only-show-errors"], { env: home.env });
    assert.equal(t.code, 0);
    assert.match(t.stdout, /tokens\.sealed\s+0600/);
    assert.equal(t.stderr, "");
  });

  it("migrate insecure-file → passphrase: re-sealed, the key file deleted, tokens kept", async () => {
    using home = tempHome();
    await seed({ ...home.env, AZKEEP_STORE_PROVIDER: "insecure-file" }, "rt-cli-secret-2");
    const env = { ...home.env, AZKEEP_PASSPHRASE: "a long cli passphrase" };
    const r = await runCli(["store", "migrate", "--to", "passphrase"], { env });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { from: string; to: string };
    assert.deepEqual([out.from, out.to], ["insecure-file", "passphrase"]);
    assert.equal(existsSync(join(home.env.AZKEEP_CONFIG_DIR!, "tokens.key")), false);
    const st = JSON.parse((await runCli(["store", "status"], { env })).stdout) as Status;
    assert.equal(st.provider, "passphrase");
    assert.equal(st.keyAvailable, null);
    const store = await openStore(createNodeContext({ env, write: () => {} }));
    assert.equal((await store.readSecrets()).refreshTokens[0]?.secret, "rt-cli-secret-2");
  });

  it("migrate without the old passphrase fails with the ways to give it, and changes nothing", async () => {
    using home = tempHome();
    await seed(
      { ...home.env, AZKEEP_STORE_PROVIDER: "passphrase", AZKEEP_PASSPHRASE: "first passphrase" },
      "rt-3",
    );
    const r = await runCli(["store", "migrate", "--to", "insecure-file"], { env: home.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: .*passphrase/);
    assert.match(r.stderr, /AZKEEP_PASSPHRASE/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const st = JSON.parse((await runCli(["store", "status"], { env: home.env })).stdout) as Status;
    assert.equal(st.provider, "passphrase");
  });

  const usage: [string[], RegExp][] = [
    [["store", "migrate", "--to", "vault"], /argument 'vault' is invalid/],
    [["store", "migrate"], /--to <provider>/],
    [["store", "migrate", "--to", "memory"], /memory provider keeps nothing on disk/],
  ];
  for (const [args, re] of usage) {
    it(`usage error: ${args.join(" ")} → exit 2`, async () => {
      using home = tempHome();
      const r = await runCli(args, { env: home.env });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, re);
    });
  }

  it("migrate --to keyutils in a kernel session keyring, then back (old key deleted each time)", async (t) => {
    if (!requireTool(t, "keyctl", "apt-get install keyutils")) return;
    using home = tempHome();
    await seed({ ...home.env, AZKEEP_STORE_PROVIDER: "insecure-file" }, "rt-4");
    const env: Record<string, string | undefined> = { ...process.env, ...home.env, NO_COLOR: "1" };
    const cli = (args: string[]) => {
      const [cmd, argv] = underKeyctlSession([process.execPath, BIN, ...args]);
      return runProcess(cmd, argv, { env, timeoutMs: 60_000 });
    };
    const m = await cli(["store", "migrate", "--to", "keyutils"]);
    assert.equal(m.code, 0, m.stderr);
    const keyId = (JSON.parse(m.stdout) as { keyId: string }).keyId;
    // Never leave a key in the user's persistent keyring, even when an assertion below fails.
    t.after(() => forgetKeyutilsKey(keyId));
    const st = JSON.parse((await cli(["store", "status"])).stdout) as Status;
    assert.equal(st.provider, "keyutils");
    assert.equal(st.keyAvailable, true);
    assert.ok(st.warnings.some((w) => /reboot/.test(w)));
    const back = await cli(["store", "migrate", "--to", "insecure-file"]);
    assert.equal(back.code, 0, back.stderr);
    const probe = await runProcess("keyctl", [
      "session",
      "-",
      "sh",
      "-c",
      `keyctl get_persistent @s >/dev/null; keyctl search @s user azkeep:${keyId}`,
    ]);
    assert.notEqual(probe.code, 0, "the keyutils key was not deleted");
  });
});
