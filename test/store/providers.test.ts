import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createFileStore } from "../../src/core/store/file-store.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import { createInsecureFileProvider } from "../../src/core/store/providers/insecure-file.js";
import { createMemoryProvider } from "../../src/core/store/providers/memory.js";
import { createPassphraseProvider } from "../../src/core/store/providers/passphrase.js";
import { requireTool } from "../helpers/require-tool.js";
import { providerContract, storeContract } from "./contract.js";
import { tempStoreDir } from "./helpers.js";
import { runProcess } from "../helpers/process.js";
import { TSX, underGnomeKeyring, underKeyctlSession } from "./run-child.js";

const dirs: { [Symbol.dispose](): void }[] = [];
after(() => dirs.forEach((d) => d[Symbol.dispose]()));
function tmp() {
  const t = tempStoreDir();
  dirs.push(t);
  return t;
}

// In-process providers.
{
  const t = tmp();
  providerContract("memory", () => createMemoryProvider({ ctx: t.ctx() }), { configDir: t.dir });
  const shared = createMemoryStore();
  storeContract("memory Store (AZKEEP_STORE_PROVIDER=memory)", () => shared, { provider: "memory" });
  const f = tmp();
  storeContract(
    "file store with the memory key (the fake)",
    () => createFileStore(f.ctx(), { provider: "memory" }),
    {
      configDir: f.dir,
      provider: "memory",
    },
  );
}
{
  const t = tmp();
  providerContract(
    "insecure-file",
    () => createInsecureFileProvider({ ctx: t.ctx(), configDir: t.dir, options: {} }),
    { configDir: t.dir, keyMayBeOnDisk: true },
  );
  const s = tmp();
  const env = { AZKEEP_STORE_PROVIDER: "insecure-file" };
  storeContract("insecure-file", () => createFileStore(s.ctx(env)), {
    configDir: s.dir,
    provider: "insecure-file",
    generation: false,
  });
}
{
  const t = tmp();
  const env = { AZKEEP_PASSPHRASE: "correct horse battery staple" };
  providerContract(
    "passphrase",
    () => createPassphraseProvider({ ctx: t.ctx(env), configDir: t.dir, options: {} }),
    { configDir: t.dir, derived: true },
  );
  const s = tmp();
  storeContract("passphrase", () => createFileStore(s.ctx({ ...env, AZKEEP_STORE_PROVIDER: "passphrase" })), {
    configDir: s.dir,
    provider: "passphrase",
    generation: false,
  });
}

// Real environments, each in a child process: the contract suite runs there.
describe("contract suites in real environments", () => {
  const home = mkdtempSync(join(tmpdir(), "azkeep-contract-home-"));
  after(() => rmSync(home, { recursive: true, force: true }));
  const childEnv = (extra: Record<string, string>) => {
    const env: Record<string, string | undefined> = { ...process.env, HOME: home, ...extra };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    delete env.XDG_RUNTIME_DIR;
    delete env.NODE_TEST_CONTEXT;
    return env;
  };
  const contract = [...TSX, "--test", "--test-reporter=spec", "test/store/contract-run.ts"];
  const expectPass = (r: { code: number | null; stdout: string; stderr: string }) => {
    assert.equal(r.code, 0, `contract failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /key provider contract/);
    assert.match(r.stdout, /store contract/);
    // The spec reporter's summary ("ℹ pass 12", "ℹ fail 0"): some tests ran, none failed.
    assert.match(r.stdout, /^ℹ pass [1-9]\d*$/m, r.stdout);
    assert.match(r.stdout, /^ℹ fail 0$/m, r.stdout);
  };

  it("keyring: gnome-keyring under dbus-run-session", async (t) => {
    if (!requireTool(t, "dbus-run-session", "apt-get install dbus")) return;
    if (!requireTool(t, "gnome-keyring-daemon", "apt-get install gnome-keyring")) return;
    const [cmd, args] = underGnomeKeyring(contract);
    expectPass(await runProcess(cmd, args, { env: childEnv({ AZKEEP_CONTRACT_PROVIDER: "keyring" }) }));
  });

  for (const backend of ["keyctl", "napi"]) {
    it(`keyutils (${backend} backend) under keyctl session`, async (t) => {
      if (!requireTool(t, "keyctl", "apt-get install keyutils")) return;
      const [cmd, args] = underKeyctlSession(contract);
      expectPass(
        await runProcess(cmd, args, {
          env: childEnv({ AZKEEP_CONTRACT_PROVIDER: "keyutils", AZKEEP_CONTRACT_BACKEND: backend }),
        }),
      );
    });
  }
});
