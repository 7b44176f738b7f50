/** `azkeep import az`: thin wrapper over `importFromAzureCli` (src/core/migrate). */
import { AzkeepError } from "../../../core/errors.js";
import type { ImportSummary } from "../../../core/migrate/import-az.js";
import type { CommandIO, CommandResult } from "../../command.js";
import { EXIT } from "../../exit-codes.js";

export interface ImportAzOptions {
  configDir?: string;
  shred: boolean;
}

/** Rows for `-o table`: one per imported item. */
export function importTable(value: unknown): Record<string, unknown>[] {
  const s = value as ImportSummary;
  return [
    ...s.subscriptions.map((x) => ({ Imported: "subscription", Name: x.name, Id: x.id, Principal: x.user })),
    ...s.refreshTokens.map((r) => ({
      Imported: "refresh token",
      Name: r.username,
      Id: r.homeAccountId,
      Principal: r.username,
    })),
    ...s.servicePrincipals.map((p) => ({
      Imported: `service principal (${p.credential})`,
      Name: p.clientId,
      Id: p.tenantId,
      Principal: p.clientId,
    })),
    ...(s.shred?.shredded ?? []).map((f) => ({ Imported: "shredded", Name: f, Id: "", Principal: "" })),
  ];
}

export async function run(options: ImportAzOptions, io: CommandIO): Promise<CommandResult> {
  const { ctx } = io;
  const [{ openStore }, { importFromAzureCli }] = await Promise.all([
    import("../../../core/store/index.js"),
    import("../../../core/migrate/import-az.js"),
  ]);
  const store = await openStore(ctx);
  if (store.configDir === ":memory:")
    throw new AzkeepError(
      "config",
      "azkeep's store is kept in memory only (AZKEEP_STORE_PROVIDER=memory), so an import would be lost when this command ends.",
      { hint: "Unset AZKEEP_STORE_PROVIDER (or choose a provider that keeps the store) and import again." },
    );
  const summary = await importFromAzureCli(ctx, store, {
    ...(options.configDir ? { configDir: options.configDir } : {}),
    shred: options.shred,
  });
  const shred = summary.shred;
  if (shred && !shred.done) {
    // The import itself stands; the plaintext files were kept, so say why and fail the command.
    ctx.progress.message(
      `ERROR: The sign-in was imported, but the Azure CLI's plaintext files were kept: ${shred.reason ?? "unknown reason"}.`,
    );
    ctx.progress.message(
      "Fix the sign-in (e.g. `azkeep login`), then run `azkeep import az --shred` again, or delete the files yourself.",
    );
    return { value: summary, table: importTable, exitCode: EXIT.error };
  }
  if (shred?.done) ctx.progress.status(`Shredded ${shred.shredded.length} plaintext file(s). ${shred.note}`);
  return { value: summary, table: importTable };
}
