/** `azkeep agent start`: starts the agent in the background, remembering --auto / --agent-only. */
import { updateConfig } from "../../../core/config.js";
import { UsageError } from "../../../core/errors.js";
import { parseDuration, reachAgent, startAgent } from "../../../agent/start.js";
import { GATE_NAMES } from "../../../agent/release.js";
import type { CommandRun } from "../../command.js";

export interface StartFlags {
  idle?: string;
  max?: string;
  auto?: boolean;
  agentOnly?: boolean;
  policy: string;
  foreground: boolean;
}

function duration(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined)
    throw new UsageError(`argument ${flag}: '${v}' is not a duration (e.g. 90s, 30m, 8h, 1d)`);
  return ms;
}

export const run: CommandRun<StartFlags> = async (flags, io) => {
  const idleMs = duration("--idle", flags.idle);
  const maxMs = duration("--max", flags.max);
  if (!(GATE_NAMES as readonly string[]).includes(flags.policy))
    throw new UsageError(
      `argument --policy: invalid choice: '${flags.policy}' (choose from ${GATE_NAMES.join(", ")})`,
    );
  const { ctx } = io;
  if (flags.auto !== undefined || flags.agentOnly !== undefined) {
    await updateConfig(ctx, (c) => {
      if (flags.auto !== undefined) {
        c.agent = { ...c.agent, auto: flags.auto };
        if (idleMs) c.agent.idleMs = idleMs;
        if (maxMs) c.agent.maxMs = maxMs;
      }
      if (flags.agentOnly !== undefined)
        c.store = { ...c.store, mode: flags.agentOnly ? "agent-only" : "direct" };
    });
  }
  if (flags.foreground) {
    process.argv.splice(
      2,
      process.argv.length,
      ...(idleMs ? ["--idle", String(idleMs)] : []),
      ...(maxMs ? ["--max", String(maxMs)] : []),
      "--policy",
      flags.policy,
    );
    {
      const { readProcess } = await import("../../../core/procfs.js");
      const tty = readProcess(process.pid).tty;
      if (tty?.startsWith("/dev/")) process.argv.push("--prompt-tty", tty);
    }
    await import(new URL("../agent/daemon.js", import.meta.url).href);
    return { wait: new Promise<void>(() => {}) };
  }
  const started = await startAgent(ctx, {
    ...(idleMs ? { idleMs } : {}),
    ...(maxMs ? { maxMs } : {}),
    policy: flags.policy,
  });
  if (started.already && (idleMs || maxMs))
    ctx.logger.warn(
      "An agent runs already; --idle and --max apply from its next start (`azkeep agent stop` first).",
    );
  const agent = await reachAgent(ctx);
  const status = agent ? await agent.status().finally(() => agent.close()) : undefined;
  if (status?.locked && status.provider === "passphrase")
    ctx.progress.message("The agent is locked: run `azkeep agent unlock` to type the store's passphrase.");
  return { value: { ...(status ?? {}), started: !started.already } };
};
