/**
 * Shared pieces of the store's end-to-end tests: the built CLI in a fresh HOME, signed in as the
 * emulator's service principal (passphrase provider: no system parts, no warning line), and the
 * checks every refusal must pass (one `ERROR:` line, the exit code, no stack trace, no "bug").
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Emulator } from "../../src/emulator/index.js";
import { BIN, STACK_TRACE, freshHome, run, type Home, type Ran } from "../e2e/helpers.js";
import { CONTOSO, SP, emulator } from "../signin/emulator.js";

export { BIN, run, freshHome, type Home, type Ran };

export const PASSPHRASE = "store e2e passphrase";

/** What a refusal looks like: exit `code`, exactly one `ERROR:` line matching `re`, no trace. */
export function assertOneError(r: Ran, re: RegExp, code = 1): void {
  const all = `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.code, code, all);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("ERROR:"));
  assert.equal(errors.length, 1, `one ERROR line: ${all}`);
  assert.match(errors[0]!, re, all);
  assert.doesNotMatch(r.stderr, STACK_TRACE, all);
  assert.doesNotMatch(r.stderr, /bug in azkeep/, all);
}

export interface SignedIn {
  emu: Emulator;
  /** The signed-in config folder, to copy for each case (never used directly). */
  template: string;
  /** A fresh HOME holding a copy of the signed-in store; its `azkeep` runs the built CLI. */
  machine(extraEnv?: Record<string, string>): Machine;
  close(): Promise<void>;
}

export interface Machine {
  h: Home;
  env: Record<string, string>;
  azkeep(args: string[], o?: { input?: string; timeoutMs?: number; uid?: number }): Promise<Ran>;
  [Symbol.dispose](): void;
}

/** Starts the emulator and signs its service principal in once; each case copies that folder. */
export async function signedIn(): Promise<SignedIn> {
  const emu = await emulator({ https: true });
  const made: Home[] = [];
  const machine = (extraEnv: Record<string, string> = {}, copyFrom?: string): Machine => {
    const h = freshHome("azkeep-store-e2e-", {
      AZKEEP_STORE_PROVIDER: "passphrase",
      AZKEEP_PASSPHRASE: PASSPHRASE,
      ...extraEnv,
    });
    made.push(h);
    if (copyFrom) cpSync(copyFrom, h.configDir, { recursive: true });
    const env = { ...emu.env, ...h.env };
    return {
      h,
      env,
      azkeep: (args, o = {}) =>
        run([process.execPath, BIN, ...args], {
          env,
          timeoutMs: o.timeoutMs ?? 30_000,
          ...(o.input !== undefined ? { input: o.input } : {}),
          ...(o.uid !== undefined ? { uid: o.uid } : {}),
        }),
      [Symbol.dispose]: () => h[Symbol.dispose](),
    };
  };
  const first = machine();
  const login = await first.azkeep(
    ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
    { input: SP.secret },
  );
  assert.equal(login.code, 0, login.stderr);
  const token = await first.azkeep(["account", "get-access-token", "-o", "none"]);
  assert.equal(token.code, 0, token.stderr);
  const template = mkdtempSync(join(tmpdir(), "azkeep-store-template-"));
  rmSync(template, { recursive: true });
  cpSync(first.h.configDir, template, { recursive: true });
  return {
    emu,
    template,
    machine: (extraEnv = {}) => machine(extraEnv, template),
    async close() {
      for (const h of made) h[Symbol.dispose]();
      rmSync(template, { recursive: true, force: true });
      await emu.close();
    },
  };
}

/** The cached token of a machine's default account, or the failure. */
export async function cachedToken(m: Machine): Promise<string> {
  const r = await m.azkeep(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** The store files of a folder, by name, for "nothing was moved or added". */
export function storeFiles(dir: string): string[] {
  return readdirSync(dir).sort();
}
