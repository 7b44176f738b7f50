/**
 * `azkeep agent log [--since DURATION|DATE] [--caller EXE|NAME|PID]`: the release log, as the
 * agent verified it (only the unlocked agent holds its MAC key), across `release.log` and its
 * rotated files, oldest first; the agent filters and sends it page by page. A broken chain is
 * one `ERROR:` line naming the file and record. `--verbose` says what was checked and what was
 * rotated away.
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
    v = await agent.releaseLog({
      ...(since !== undefined ? { since } : {}),
      ...(flags.caller !== undefined ? { caller: flags.caller } : {}),
    });
  } finally {
    agent.close();
  }
  // Filtered by the agent already; again here for an agent of an older revision.
  const records = filterRecords(v.records as LogRecord[], { since, caller: flags.caller });
  if (v.previous) io.ctx.logger.warn(`An earlier release log was broken and kept aside: ${v.previous}`);
  for (const note of v.notes) io.ctx.logger.info(note);
  if (!v.ok)
    throw new AzkeepError(
      "store_damaged",
      `The release log does not verify: ${v.problems.join(" ") || "unknown problem"}`,
      {
        hint: "Someone with your uid changed it; `azkeep doctor` reports it too.",
      },
    );
  io.ctx.logger.info(
    `The release log verifies: ${v.checked} records checked in ${v.files.join(", ") || "(no file yet)"}.`,
  );
  return { value: records, table: (rows) => (rows as LogRecord[]).map(recordRow) };
};
