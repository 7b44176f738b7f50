/** `azkeep agent start`: starts the agent in the background, remembering --auto / --agent-only. */
import { updateConfig, type AzkeepConfig } from "../../../core/config.js";
import type { Context } from "../../../core/context.js";
import { AzkeepError, UsageError } from "../../../core/errors.js";
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
    await rememberSettings(ctx, flags, idleMs, maxMs);
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

/**
 * `--auto` / `--agent-only` and their `--no-` forms are sealed with the store (config.json's
 * `agent` and `store.mode` are in the sealed mirror): an outside edit that turns agent-only
 * mode off is named, not obeyed. So this write opens the store in this process — with the
 * passphrase provider it asks for the passphrase — and only turning agent-only mode on, which
 * gives nothing away, is written without the key when the key is not at hand without asking
 * (the next seal records it).
 */
async function rememberSettings(
  ctx: Context,
  flags: StartFlags,
  idleMs: number | undefined,
  maxMs: number | undefined,
): Promise<void> {
  const change = (c: AzkeepConfig) => {
    if (flags.auto !== undefined) {
      c.agent = { ...c.agent, auto: flags.auto };
      if (idleMs) c.agent.idleMs = idleMs;
      if (maxMs) c.agent.maxMs = maxMs;
    }
    if (flags.agentOnly !== undefined)
      c.store = { ...c.store, mode: flags.agentOnly ? "agent-only" : "direct" };
  };
  // The file store itself, not `openStore`: turning agent-only mode off is the one write that
  // an agent-only store allows outside the agent, from a person who can open the store.
  const { openFileStore } = await import("../../../core/store/index.js");
  if (flags.auto !== undefined || flags.agentOnly !== true) {
    // Sealed first, then config.json: a crash between leaves the old file, which `store repair` sets right
    // (turning agent-only mode off: the old file is the stricter one, accepted as is).
    await (await openFileStore(ctx)).updateSettings((c) => change(c as unknown as AzkeepConfig));
    return;
  }
  // Turning agent-only mode on: config.json first (a stricter file is accepted as it is), then
  // the seal records it — now, when the key is at hand without asking, else at the next write.
  await updateConfig(ctx, change);
  const quiet: Context = { ...ctx, prompter: { ...ctx.prompter, interactive: false } };
  try {
    await (await openFileStore(quiet)).updateSettings(() => {});
  } catch (e) {
    if (!(e instanceof AzkeepError) || e.code !== "store_unavailable") throw e;
    ctx.logger.debug(`agent start: agent-only mode is sealed at the next write (${e.message})`);
  }
}
