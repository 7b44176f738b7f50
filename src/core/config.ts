/**
 * azkeep's own settings, `config.json` in the config folder: which key provider protects the
 * token store (and the explicit insecure-file opt-in), and — added by other parts — the active
 * cloud and custom clouds. Nothing in it is secret; it is still 0600 like every store file.
 *
 * Reads take no lock and never see a partial file (writes replace it atomically); changes go
 * through `updateConfig`, which holds `config.lock` across re-read → change → write. Fields this
 * version does not know are kept as they are.
 */
import { join } from "node:path";
import type { Context } from "./context.js";
import { AzkeepError } from "./errors.js";
import { checkDir, ensurePrivateDir, readPrivateFile, shq, writeFileAtomic } from "./store/files.js";
import { configProblem } from "./store/shape.js";
import type { KeyRecord } from "./store/provider.js";

export const CONFIG_FILE = "config.json";
export const CONFIG_LOCK = "config.lock";

/** How the token store is protected. Written by the store; read by `store status` and `doctor`. */
export interface StoreConfig {
  /** The data key that seals tokens.sealed now; its provider is the store's provider. */
  key?: KeyRecord;
  /** The key being replaced by `store migrate`, until the re-sealed file is in place. */
  previous?: KeyRecord;
  /** The explicit opt-in that allows the insecure-file provider, with when and how it was given. */
  insecureFileOptIn?: { at: string; via: string };
  /**
   * `agent-only`: no process but the agent unseals the store (`azkeep agent start
   * --agent-only`); absent or `direct`: any azkeep process may, and uses the agent when it runs.
   */
  mode?: "agent-only" | "direct";
}

/** The agent's settings (`azkeep agent start --auto …` remembers them). */
export interface AgentConfig {
  /** Any command that needs the store starts the agent in the background when none runs. */
  auto?: boolean;
  /** Lock after this long without use (ms), for auto-started agents. */
  idleMs?: number;
  /** Lock this long after an unlock (ms), for auto-started agents. */
  maxMs?: number;
}

export interface AzkeepConfig {
  version: 1;
  store?: StoreConfig;
  agent?: AgentConfig;
}

export function configPath(ctx: Pick<Context, "paths">): string {
  return join(ctx.paths.configDir, CONFIG_FILE);
}

const FIX_HINT = (path: string) =>
  `Fix it by hand, or move it aside (\`mv ${shq(path)} ${shq(path + ".bad")}\`) and run \`azkeep store repair\`, ` +
  "which finds the key of tokens.sealed again from its header (custom clouds must then be registered again).";

function parse(path: string, raw: Buffer | undefined): AzkeepConfig {
  if (!raw) return { version: 1 };
  let value: unknown;
  try {
    value = JSON.parse(raw.toString("utf8").replace(/^\uFEFF/, "")) as unknown;
  } catch (e) {
    throw new AzkeepError("config", `${path} is not valid JSON.`, { hint: FIX_HINT(path), cause: e });
  }
  // A wrong shape is damage too: refused like bad JSON, never obeyed half-way.
  const problem = configProblem(value);
  if (problem)
    throw new AzkeepError("config", `${path} has the wrong shape: ${problem}.`, {
      hint: FIX_HINT(path),
      details: { path, problem },
    });
  return { ...(value as object), version: 1 };
}

/** Reads config.json (missing → defaults). No lock; refuses a file other users can read. */
export async function readConfig(ctx: Pick<Context, "paths">): Promise<AzkeepConfig> {
  const path = configPath(ctx);
  if (!checkDir(ctx.paths.configDir)) return { version: 1 };
  return parse(path, readPrivateFile(path));
}

/**
 * Changes config.json under its lock: re-reads it, lets `change` mutate it in place, writes it
 * atomically (0600) when something changed, and returns what `change` returned.
 */
export async function updateConfig<T>(
  ctx: Pick<Context, "paths" | "clock" | "signal">,
  change: (config: AzkeepConfig) => T | Promise<T>,
  options: { lockTimeoutMs?: number } = {},
): Promise<T> {
  const dir = ctx.paths.configDir;
  await ensurePrivateDir(dir);
  const path = configPath(ctx);
  const { withLock } = await import("./store/lock.js");
  return withLock(
    join(dir, CONFIG_LOCK),
    async () => {
      const current = parse(path, readPrivateFile(path));
      const before = JSON.stringify(current);
      const result = await change(current);
      const after = JSON.stringify(current, null, 2);
      if (JSON.stringify(JSON.parse(after)) !== before) await writeFileAtomic(path, after + "\n");
      return result;
    },
    {
      clock: ctx.clock,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}),
    },
  );
}
