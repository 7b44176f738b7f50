/**
 * The `insecure-file` key provider: the data key in `tokens.key`, a 0600 file beside the
 * store. Anyone who can copy the config folder can open the store, so it is used only after an
 * explicit opt-in remembered in config.json, and every use prints a warning. It exists for
 * machines with no keyring, no kernel keyring and no one to type a passphrase.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { ensurePrivateDir, moveAside, readPrivateFile, writeFileAtomic } from "../files.js";
import type { KeyProvider, ProviderContext } from "../provider.js";

export const KEY_FILE = "tokens.key";

interface KeyFile {
  version: 1;
  warning: string;
  keys: Record<string, string>;
}

const WARNING =
  "This file is the key of tokens.sealed: anyone who can read both can use your Azure sign-in. " +
  "Move to a safer provider with `azkeep store migrate --to keyring` (or keyutils, passphrase).";

export function insecureFileWarning(path: string): string {
  return (
    `The token store's key is kept in a plain file (${path}): anyone who copies the config folder ` +
    "can use your sign-in. Run `azkeep store migrate --to keyring` (or keyutils, passphrase) to fix this."
  );
}

export function createInsecureFileProvider(pctx: ProviderContext): KeyProvider {
  const path = join(pctx.configDir, KEY_FILE);
  const read = (): KeyFile => {
    const raw = readPrivateFile(path);
    if (!raw) return { version: 1, warning: WARNING, keys: {} };
    try {
      const parsed = JSON.parse(raw.toString("utf8")) as KeyFile;
      if (typeof parsed.keys !== "object" || parsed.keys === null) throw new Error("no keys");
      return parsed;
    } catch {
      // A damaged key file is kept aside like a damaged store; its keys count as missing.
      const aside = moveAside(path, pctx.ctx.clock.now());
      pctx.ctx.logger.warn(`The key file ${path} was damaged and was moved aside to ${aside ?? "(gone)"}.`);
      return { version: 1, warning: WARNING, keys: {} };
    }
  };
  return {
    name: "insecure-file",
    async createKey(kid) {
      const key = pctx.ctx.random.bytes(32);
      await ensurePrivateDir(pctx.configDir);
      const file = read();
      file.keys[kid.toString("hex")] = Buffer.from(key).toString("base64");
      file.warning = WARNING;
      await writeFileAtomic(path, JSON.stringify(file, null, 2) + "\n");
      return { key };
    },
    async getKey(record) {
      const b64 = read().keys[record.keyId];
      if (b64 === undefined) return undefined;
      const key = Buffer.from(b64, "base64");
      return key.length === 32 ? new Uint8Array(key) : undefined;
    },
    async deleteKey(record) {
      const file = read();
      if (!(record.keyId in file.keys)) return false;
      delete file.keys[record.keyId];
      if (Object.keys(file.keys).length === 0) await fsp.unlink(path).catch(() => {});
      else await writeFileAtomic(path, JSON.stringify(file, null, 2) + "\n");
      return true;
    },
    describe: () =>
      `the key is in a plain 0600 file beside the store (${path}); anyone who copies the folder can open the store`,
    warnings: () => [insecureFileWarning(path)],
  };
}
