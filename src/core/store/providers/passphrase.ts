/**
 * The `passphrase` key provider: the data key is derived from a passphrase with scrypt
 * (N = 2^15, r = 8, p = 1, 32 MiB, salt = "azkeep-store-key:" + the random key id). Nothing about
 * the passphrase is stored; config.json keeps the parameters and a key check value so a wrong
 * passphrase is told apart from a damaged file (a wrong passphrase never moves the store aside).
 *
 * Where the passphrase comes from, first match wins: `--passphrase-file` (options), then
 * `AZKEEP_PASSPHRASE`, then `AZKEEP_PASSPHRASE_FILE`, then a hidden prompt on the terminal. A new
 * one (`store migrate --to passphrase`): `--new-passphrase-file`, `AZKEEP_NEW_PASSPHRASE`,
 * `AZKEEP_NEW_PASSPHRASE_FILE`, then the sources above — refused if it is the current one.
 * Derivation costs ~70 ms and 32 MiB on a 2-core VM, once per process (the store keeps the key
 * in memory); the agent keeps it unlocked for long-running use.
 */
import { scrypt } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { AzkeepError, UsageError } from "../../errors.js";
import { shq } from "../files.js";
import type { KeyProvider, KeyRecord, ProviderContext, ScryptParams } from "../provider.js";

export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
export const MIN_PASSPHRASE_LENGTH = 8;

const SOURCES_HINT =
  "Set AZKEEP_PASSPHRASE or AZKEEP_PASSPHRASE_FILE (or pass --passphrase-file), or run the command on a terminal.";

export function deriveKey(passphrase: string, kid: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  const salt = Buffer.concat([Buffer.from("azkeep-store-key:"), kid]);
  return new Promise((resolve, reject) =>
    scrypt(
      passphrase.normalize("NFC"),
      salt,
      32,
      { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + (1 << 20) },
      (err, key) => (err ? reject(err) : resolve(new Uint8Array(key))),
    ),
  );
}

function readPassphraseFile(pctx: ProviderContext, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new AzkeepError(
      "bad_input",
      `The passphrase file ${path} cannot be read: ${(e as Error).message}.`,
      {
        hint: "Check the path given with --passphrase-file or AZKEEP_PASSPHRASE_FILE.",
      },
    );
  }
  try {
    const st = statSync(path);
    if (process.platform !== "win32" && (st.mode & 0o077) !== 0)
      pctx.ctx.logger.warn(
        `The passphrase file ${path} is readable by other users; run: chmod 600 '${path}'`,
      );
  } catch {
    /* read worked; the mode check is advisory */
  }
  return text.replace(/\r?\n$/, "");
}

type Source = { passphrase: string; interactive: false } | { interactive: true };

function source(pctx: ProviderContext, purpose: "open" | "migrate"): Source | undefined {
  const { options, ctx } = pctx;
  if (purpose === "migrate") {
    if (options.newPassphraseFile)
      return { passphrase: readPassphraseFile(pctx, options.newPassphraseFile), interactive: false };
    if (ctx.env.AZKEEP_NEW_PASSPHRASE)
      return { passphrase: ctx.env.AZKEEP_NEW_PASSPHRASE, interactive: false };
    if (ctx.env.AZKEEP_NEW_PASSPHRASE_FILE)
      return { passphrase: readPassphraseFile(pctx, ctx.env.AZKEEP_NEW_PASSPHRASE_FILE), interactive: false };
  }
  if (options.passphraseFile)
    return { passphrase: readPassphraseFile(pctx, options.passphraseFile), interactive: false };
  if (ctx.env.AZKEEP_PASSPHRASE) return { passphrase: ctx.env.AZKEEP_PASSPHRASE, interactive: false };
  if (ctx.env.AZKEEP_PASSPHRASE_FILE)
    return { passphrase: readPassphraseFile(pctx, ctx.env.AZKEEP_PASSPHRASE_FILE), interactive: false };
  if (ctx.prompter.interactive) return { interactive: true };
  return undefined;
}

/** Whether a passphrase can be had without a terminal (for the automatic provider choice). */
export function passphraseConfigured(pctx: ProviderContext): boolean {
  const { options, ctx } = pctx;
  return Boolean(options.passphraseFile || ctx.env.AZKEEP_PASSPHRASE || ctx.env.AZKEEP_PASSPHRASE_FILE);
}

export function createPassphraseProvider(pctx: ProviderContext): KeyProvider {
  const { ctx } = pctx;
  const sealed = join(pctx.configDir, "tokens.sealed");
  // The passphrase that opened the store in this process, so that a "new" one equal to it (no
  // new passphrase given: the old sources win) is refused instead of re-sealing under the old.
  let opened: string | undefined;
  return {
    name: "passphrase",
    async createKey(kid, purpose) {
      const src = source(pctx, purpose === "migrate" ? "migrate" : "open");
      if (!src)
        throw new AzkeepError(
          "store_unavailable",
          "The passphrase provider needs a new passphrase and none was given.",
          {
            hint: SOURCES_HINT,
          },
        );
      let passphrase: string;
      if (src.interactive) {
        ctx.progress.message(
          "azkeep seals your tokens with a key derived from a passphrase. It is never stored.",
        );
        passphrase = await ctx.prompter.ask("New passphrase for the azkeep store: ", { secret: true });
        if (passphrase.length >= MIN_PASSPHRASE_LENGTH) {
          const again = await ctx.prompter.ask("Repeat the passphrase: ", { secret: true });
          if (again !== passphrase) throw new UsageError("The two passphrases differ; nothing was changed.");
        }
      } else passphrase = src.passphrase;
      if (passphrase.length < MIN_PASSPHRASE_LENGTH)
        throw new UsageError(`The passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters.`);
      if (
        purpose === "migrate" &&
        opened !== undefined &&
        passphrase.normalize("NFC") === opened.normalize("NFC")
      )
        throw new UsageError(
          "The new passphrase is the same as the one that opens the store now; nothing was changed.",
          {
            hint:
              "Give the new passphrase with AZKEEP_NEW_PASSPHRASE_FILE (or --new-passphrase-file, AZKEEP_NEW_PASSPHRASE), " +
              "and the current one with AZKEEP_PASSPHRASE_FILE (or --passphrase-file, AZKEEP_PASSPHRASE).",
          },
        );
      const scryptParams = { ...DEFAULT_SCRYPT };
      return { key: await deriveKey(passphrase, kid, scryptParams), scrypt: scryptParams };
    },
    async getKey(record: KeyRecord, verify) {
      const params = record.scrypt ?? DEFAULT_SCRYPT;
      const kid = Buffer.from(record.keyId, "hex");
      const src = source(pctx, "open");
      if (!src)
        throw new AzkeepError(
          "store_unavailable",
          "The token store is sealed with a passphrase and none was given.",
          {
            hint: SOURCES_HINT,
          },
        );
      for (let attempt = 1; ; attempt++) {
        const passphrase = src.interactive
          ? await ctx.prompter.ask("Passphrase of the azkeep store: ", { secret: true })
          : src.passphrase;
        const key = await deriveKey(passphrase, kid, params);
        if (verify(key)) {
          opened = passphrase;
          return key;
        }
        if (!src.interactive || attempt >= 3)
          throw new AzkeepError("store_unavailable", "The passphrase does not open the token store.", {
            hint:
              "Check AZKEEP_PASSPHRASE / AZKEEP_PASSPHRASE_FILE / --passphrase-file. If the passphrase is lost, so are " +
              `the sealed tokens: run \`mv ${shq(sealed)} ${shq(sealed + ".lost")}\` and sign in again with \`azkeep login\`.`,
          });
        ctx.progress.message("That passphrase does not open the store; try again.");
      }
    },
    async deleteKey() {
      // Nothing is stored: forgetting the key record (config.json) is the deletion.
      return true;
    },
    describe: (record) => {
      const p = record?.scrypt ?? DEFAULT_SCRYPT;
      return `the key is derived from your passphrase with scrypt (N=2^${Math.log2(p.N)}, r=${p.r}, p=${p.p}); nothing about the passphrase is stored`;
    },
  };
}
