/** `azkeep store status`: thin wrapper over the store's `status()`. */
import { openFileStore } from "../../../core/store/index.js";
import type { StoreStatus } from "../../../core/store/types.js";
import type { CommandIO, CommandResult } from "../../command.js";

export type StatusOptions = Record<string, never>;

/** `-o table`: one row per file: its mode, what it holds and what protects it. */
export function statusTable(value: unknown): Record<string, unknown>[] {
  const st = value as StoreStatus;
  return st.files.map((f) => {
    const p = st.protection?.find((x) => x.file === f.path);
    return {
      File: f.path,
      Mode: f.exists ? f.mode : "(none)",
      Holds: p?.holds ?? (f.path === st.configDir ? "the store's folder" : ""),
      ProtectedBy: p?.protectedBy ?? "",
    };
  });
}

export async function run(_options: StatusOptions, io: CommandIO): Promise<CommandResult> {
  const status = await (await openFileStore(io.ctx)).status();
  for (const w of status.warnings) io.ctx.logger.warn(w);
  return { value: status, table: statusTable };
}
