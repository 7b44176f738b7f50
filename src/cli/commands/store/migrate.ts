/** `azkeep store migrate --to PROVIDER`: thin wrapper over `migrateStore`. */
import { UsageError } from "../../../core/errors.js";
import { isProviderName, migrateStore, openFileStore } from "../../../core/store/index.js";
import type { CommandIO, CommandResult } from "../../command.js";

export interface MigrateOptions {
  to: string;
  passphraseFile?: string;
  newPassphraseFile?: string;
}

export async function run(options: MigrateOptions, io: CommandIO): Promise<CommandResult> {
  if (!isProviderName(options.to))
    throw new UsageError(`'${options.to}' is not a key provider.`, {
      hint: "Use one of: keyring, keyutils, passphrase, insecure-file.",
    });
  const storeOptions = {
    ...(options.passphraseFile ? { passphraseFile: options.passphraseFile } : {}),
    ...(options.newPassphraseFile ? { newPassphraseFile: options.newPassphraseFile } : {}),
  };
  const result = await migrateStore(io.ctx, options.to, storeOptions);
  const status = await (await openFileStore(io.ctx, storeOptions)).status();
  return {
    value: {
      from: result.from ?? null,
      to: result.to,
      keyId: result.keyId,
      warnings: status.warnings,
      protection: status.protection ?? [],
    },
  };
}
