/** `azkeep doctor`: thin wrapper over `runDoctor` (src/core/audit). Exit 3 when something is at risk. */
import { doctorTable, runDoctor } from "../../../core/audit/doctor.js";
import type { StoreStatus } from "../../../core/store/types.js";
import type { CommandIO, CommandResult } from "../../command.js";
import { EXIT } from "../../exit-codes.js";

export type DoctorOptions = Record<string, never>;

export async function run(_options: DoctorOptions, io: CommandIO): Promise<CommandResult> {
  const { ctx } = io;
  const report = await runDoctor(ctx, {
    storeStatus: async (): Promise<StoreStatus | undefined> => {
      const { openStore } = await import("../../../core/store/index.js");
      return (await openStore(ctx)).status();
    },
    releaseLog: async () => {
      // Only the agent holds the log's MAC key; without one running, there is nothing to check with.
      const { reachAgent } = await import("../../../agent/start.js");
      const agent = await reachAgent(ctx);
      if (!agent) return undefined;
      try {
        // Checked by the agent across the rotated files too; no records needed here.
        const v = await agent.releaseLog({ records: false });
        const path = await import("node:path");
        return {
          ok: v.ok,
          path: path.join(ctx.paths.configDir, "release.log"),
          ...(v.problems.length ? { problem: v.problems.join(" ") } : {}),
          ...(v.previous ? { previous: v.previous } : {}),
        };
      } finally {
        agent.close();
      }
    },
  });
  if (report.atRisk) {
    const { high, medium } = report.summary;
    ctx.logger.warn(
      `${high + medium} plaintext credential finding(s) at risk (high: ${high}, medium: ${medium}). ` +
        "Each finding's `fix` says what to do; `azkeep doctor -o table` shows them in short.",
    );
  }
  return { value: report, table: doctorTable, exitCode: report.atRisk ? EXIT.atRisk : EXIT.ok };
}
