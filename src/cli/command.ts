/**
 * The contract between the command-line frame (`main.ts`) and the commands. A command module
 * exports `run(options, io)`: it calls one core function and returns the value to print; the
 * frame applies `--query`, formats with `-o` and maps errors to exit codes.
 */
import type { Command } from "commander";
import type { Context } from "../core/context.js";
import type { OutputFormat, TableTransformer } from "./output/format.js";

export interface GlobalOptions {
  output: OutputFormat;
  query: string | undefined;
  debug: boolean;
  /** az's `--verbose`: INFO lines on stderr. */
  verbose: boolean;
  onlyShowErrors: boolean;
}

export interface CommandIO {
  ctx: Context;
  globals: GlobalOptions;
  /** Raw write to stdout, for commands that stream (e.g. `emulator start`). */
  stdout(text: string): void;
  /** Aborted on Ctrl-C / SIGTERM, so long waits end cleanly. */
  signal: AbortSignal;
}

export interface CommandResult {
  /** Printed through `--query` and `-o`; `undefined` prints nothing. */
  value?: unknown;
  /** Exit code when not 0 (e.g. `doctor` → 3). */
  exitCode?: number;
  /** Columns for `-o table` (used when no `--query`). */
  table?: TableTransformer;
  /** Resolves when a long-running command (a server) should end; the frame waits for it. */
  wait?: Promise<void>;
}

export type CommandRun<O> = (options: O, io: CommandIO) => Promise<CommandResult | void>;
export interface CommandModule<O = never> {
  run: CommandRun<O>;
}

/**
 * Builds a commander action that imports the command module lazily (start-up stays fast)
 * and hands its options, positional arguments included, to `run`.
 */
export type Lazy = <O>(
  load: () => Promise<{ run: CommandRun<O> }>,
  map?: (opts: Record<string, unknown>, args: unknown[], cmd: Command) => O,
) => (...args: unknown[]) => Promise<void>;

/** Each command group's `index.ts` exports one of these. */
export type RegisterGroup = (program: Command, lazy: Lazy) => void;
