/** `azkeep store repair`: thin wrapper over the file store's `repair()`. */
import { openFileStore } from "../../../core/store/index.js";
import type { CommandIO, CommandResult } from "../../command.js";

export interface RepairOptions {
  passphraseFile?: string;
  /** Use a tokens.sealed older than the generation its key provider recorded (a backup put back). */
  acceptRollback?: boolean;
}

export async function run(options: RepairOptions, io: CommandIO): Promise<CommandResult> {
  const store = await openFileStore(
    io.ctx,
    options.passphraseFile ? { passphraseFile: options.passphraseFile } : {},
  );
  const report = await store.repair(options.acceptRollback ? { acceptRollback: true } : {});
  if (report.configMovedTo)
    io.ctx.logger.warn(`config.json was damaged and was moved aside to ${report.configMovedTo}.`);
  if (report.profileMovedTo)
    io.ctx.logger.warn(`profile.json was damaged and was moved aside to ${report.profileMovedTo}.`);
  return { value: report };
}
