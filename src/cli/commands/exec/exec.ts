/** `azkeep exec -- CMD ARGS…`: see src/exec/launcher.ts. */
import { UsageError } from "../../../core/errors.js";
import type { CommandRun } from "../../command.js";

export interface ExecFlags {
  command: string[];
  subscription?: string;
  tenant?: string;
  allowScope?: string[];
  shim?: boolean;
  log?: string;
  nested?: boolean;
}

export const run: CommandRun<ExecFlags> = async (flags, io) => {
  const [command, ...args] = flags.command;
  if (!command) throw new UsageError("the following arguments are required: CMD (after --)");
  const [{ runExec }, { shimDir }] = await Promise.all([
    import("../../../exec/launcher.js"),
    import("../shim/path.js"),
  ]);
  const exitCode = await runExec(io.ctx, {
    command,
    args,
    ...(flags.subscription !== undefined ? { subscription: flags.subscription } : {}),
    ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}),
    ...(flags.allowScope?.length
      ? { allowScopes: flags.allowScope.flatMap((s) => s.split(/[\s,]+/)).filter(Boolean) }
      : {}),
    shim: flags.shim !== false,
    ...(flags.shim !== false ? { shimDir: shimDir() } : {}),
    ...(flags.log !== undefined ? { logFile: flags.log } : {}),
    ...(flags.nested ? { nested: true } : {}),
  });
  return { exitCode };
};
