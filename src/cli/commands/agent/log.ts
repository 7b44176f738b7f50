/**
 * `azkeep agent log [--since DURATION|DATE] [--caller EXE|NAME|PID]`: the release log, as the
 * agent verified it (only the unlocked agent holds its MAC key). A broken chain is one
 * `ERROR:` line naming the record, after the records that still verify.
 */
import { filterRecords, recordRow, type LogRecord } from "../../../agent/log.js";
import { parseDuration } from "../../../agent/start.js";
import { AzkeepError, UsageError } from "../../../core/errors.js";
import type { CommandRun } from "../../command.js";
import { runningAgent } from "./common.js";

export interface LogFlags {
  since?: string;
  caller?: string;
}

export const run: CommandRun<LogFlags> = async (flags, io) => {
  let since: number | undefined;
  if (flags.since !== undefined) {
    const ms = parseDuration(flags.since);
    since = ms !== undefined ? io.ctx.clock.now() - ms : Date.parse(flags.since);
    if (Number.isNaN(since))
      throw new UsageError(
        `argument --since: '${flags.since}' is neither a duration (30m, 2h, 1d) nor a date`,
      );
  }
  const agent = await runningAgent(io.ctx);
  let v: Awaited<ReturnType<typeof agent.releaseLog>>;
  try {
    v = await agent.releaseLog();
  } finally {
    agent.close();
  }
  const records = filterRecords(v.records as LogRecord[], { since, caller: flags.caller });
  if (v.previous) io.ctx.logger.warn(`An earlier release log was broken and kept aside: ${v.previous}`);
  if (!v.ok)
    throw new AzkeepError(
      "store_damaged",
      `The release log does not verify: ${v.problem ?? "unknown problem"}`,
      {
        hint: "Someone with your uid changed it; `azkeep doctor` reports it too.",
      },
    );
  return { value: records, table: (rows) => (rows as LogRecord[]).map(recordRow) };
};
