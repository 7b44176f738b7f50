/**
 * `store status`: which provider protects the store, the files and their modes, what protects
 * what, and warnings (modes other users can read, the insecure-file opt-in, keyutils and
 * reboots, files kept aside after damage, an interrupted migration). Loaded only by the
 * commands that show it (`store status`, `doctor`, `account show`).
 */
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_FILE, readConfig, type AzkeepConfig } from "../config.js";
import type { Context } from "../context.js";
import { AzkeepError } from "../errors.js";
import { checkDirPath, modeString, shq } from "./files.js";
import type { FileStore } from "./file-store.js";
import { PROFILE_FILE, SEALED_FILE } from "./file-store.js";
import { keyCheckValue } from "./sealed.js";
import { KEY_FILE } from "./providers/insecure-file.js";
import type { StoreStatus } from "./types.js";

export async function storeStatus(ctx: Context, store: FileStore): Promise<StoreStatus> {
  const dir = store.configDir;
  checkDirPath(dir);
  const warnings: string[] = [];
  let config: AzkeepConfig = { version: 1 };
  try {
    config = await readConfig(ctx);
  } catch (e) {
    if (!(e instanceof AzkeepError)) throw e;
    warnings.push(`${e.message} ${e.hint ?? ""}`.trim());
  }
  const record = config.store?.key;

  const uid = process.getuid?.();
  const files: StoreStatus["files"] = [];
  const look = (path: string, isDir: boolean) => {
    try {
      const st = lstatSync(path);
      files.push({ path, mode: modeString(st.mode), exists: true });
      if (process.platform !== "win32") {
        if ((st.mode & 0o077) !== 0)
          warnings.push(
            `${path} is accessible by other users (mode ${modeString(st.mode)}); azkeep refuses to use it. Run: chmod ${isDir ? 700 : 600} ${shq(path)}`,
          );
        if (uid !== undefined && st.uid !== uid)
          warnings.push(`${path} belongs to another user (uid ${st.uid}).`);
      }
    } catch {
      files.push({ path, mode: "", exists: false });
    }
  };
  look(dir, true);
  for (const f of [CONFIG_FILE, PROFILE_FILE, SEALED_FILE]) look(join(dir, f), false);
  const keyFile = join(dir, KEY_FILE);
  if (record?.provider === "insecure-file") look(keyFile, false);

  let damaged: string[] = [];
  try {
    damaged = readdirSync(dir).filter((n) => /\.damaged-/.test(n));
  } catch {
    /* no folder yet */
  }
  if (damaged.length)
    warnings.push(
      `${damaged.length} damaged file(s) kept aside in ${dir} (${damaged.join(", ")}); they are useless without their key. ` +
        "Delete them once you no longer need them.",
    );

  let keyAvailable: boolean | null | undefined;
  const protection: NonNullable<StoreStatus["protection"]> = [];
  if (record) {
    const provider = await store.provider(record.provider);
    if (record.provider === "passphrase") keyAvailable = null;
    else {
      try {
        const key = await provider.getKey(record, () => true);
        keyAvailable = key !== undefined && keyCheckValue(key) === record.keyCheck;
        if (!keyAvailable)
          warnings.push(
            `The store's key is not in the ${record.provider} provider: tokens.sealed cannot be opened. Run \`azkeep login\` to sign in again.`,
          );
      } catch (e) {
        keyAvailable = false;
        warnings.push(e instanceof AzkeepError ? `${e.message} ${e.hint ?? ""}`.trim() : String(e));
      }
    }
    warnings.push(...(provider.warnings?.() ?? []));
    if (record.provider === "keyutils")
      warnings.push("The kernel keyring does not survive a reboot: after one, run `azkeep login` again.");
    protection.push({
      file: join(dir, SEALED_FILE),
      holds: "refresh tokens, access tokens, service-principal secrets and certificates",
      protectedBy: `AES-256-GCM (authenticated header); ${provider.describe(record)}`,
    });
  } else {
    protection.push({
      file: join(dir, SEALED_FILE),
      holds: "nothing yet",
      protectedBy:
        "no key yet: the first sign-in picks the OS keyring, else the kernel keyring, else a passphrase " +
        "(or AZKEEP_STORE_PROVIDER); `azkeep store migrate --to PROVIDER` picks one now",
    });
  }
  if (config.store?.previous)
    warnings.push(
      `A change of provider was interrupted (old key ${config.store.previous.provider}); the next sign-in or token refresh finishes it.`,
    );
  protection.push(
    {
      file: join(dir, PROFILE_FILE),
      holds: "accounts, tenants and subscriptions (no secrets)",
      protectedBy: "a private file (0600) in a private folder (0700)",
    },
    {
      file: join(dir, CONFIG_FILE),
      holds: "which key provider protects the store, and the key's id (no secrets)",
      protectedBy: "a private file (0600)",
    },
  );
  if (record?.provider === "insecure-file")
    protection.push({
      file: keyFile,
      holds: "the key of tokens.sealed, in plain text",
      protectedBy: "only its file mode (0600): anyone who copies the folder can open the store",
    });

  return {
    provider: record?.provider ?? "none",
    configDir: dir,
    files,
    warnings,
    ...(record ? { keyId: record.keyId } : {}),
    ...(keyAvailable !== undefined ? { keyAvailable } : {}),
    protection,
    format:
      "AZKS v1: AES-256-GCM, 96-bit random nonce per write, header (magic, version, key id, nonce) authenticated",
  };
}
