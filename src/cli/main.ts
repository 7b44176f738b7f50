/**
 * The command-line frame: `run(argv, io) → exit code`. Parses global flags, dispatches to a
 * lazily imported command, applies `--query` and `-o`, and turns every error into one
 * `ERROR: …` line plus the next step, with the exit code from `exit-codes.ts`. Only the bin
 * script calls `process.exit`.
 */
import { Command, CommanderError, Help, Option } from "commander";
import { createNodeContext, type Context } from "../core/context.js";
import { redact } from "../core/redact.js";
import type { CommandIO, CommandResult, GlobalOptions, Lazy } from "./command.js";
import { registerAll } from "./commands/index.js";
import { errorText } from "./error-text.js";
import { EXIT } from "./exit-codes.js";
import {
  OUTPUT_FORMATS,
  applyQuery,
  checkQuery,
  commandRan,
  formatOutput,
  invalidOutputMessage,
  isOutputFormat,
  type OutputFormat,
} from "./output/format.js";
import { UsageError } from "../core/errors.js";

const USAGE_HINT = "Run 'azkeep --help' (or the command with --help) to see the usage.";
import { environmentHelp, wrapText } from "./help-env.js";
import { BUILD, VERSION } from "./version.js";

export interface RunIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env?: Record<string, string | undefined>;
  /** The help's width (default: the terminal's, else COLUMNS, else 80). */
  columns?: number;
  /** Builds the Context; tests pass fakes. */
  makeContext?: (globals: GlobalOptions) => Context;
  signal?: AbortSignal;
}

/** `-o=json` (as Terraform sends it) → `-o json`; commander only knows `--output=json`. */
export function normalizeArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const [i, a] of argv.entries()) {
    // After `--` the words are another program's (`azkeep exec -- CMD ARGS…`): left as they are.
    if (a === "--") return [...out, ...argv.slice(i)];
    const m = /^-([a-z])=(.*)$/s.exec(a);
    if (m && m[1] !== undefined && m[2] !== undefined && a !== "--") out.push(`-${m[1]}`, m[2]);
    else out.push(a);
  }
  return out;
}

function preScan(argv: readonly string[], env: Record<string, string | undefined>): GlobalOptions {
  const before = argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv;
  let output: OutputFormat = "json";
  const configured = env.AZKEEP_CORE_OUTPUT;
  if (configured && isOutputFormat(configured)) output = configured;
  return {
    output,
    query: undefined,
    debug: before.includes("--debug"),
    verbose: before.includes("--verbose"),
    onlyShowErrors: before.includes("--only-show-errors"),
  };
}

export async function run(argv: readonly string[], io: RunIO): Promise<number> {
  const started = performance.now();
  const args = normalizeArgv(argv);
  const env = io.env ?? process.env;
  const globals = preScan(args, env);
  let ctx: Context | undefined;
  const getCtx = (): Context =>
    (ctx ??= io.makeContext
      ? io.makeContext(globals)
      : createNodeContext({
          debug: globals.debug,
          verbose: globals.verbose,
          onlyShowErrors: globals.onlyShowErrors,
          env,
          signal: controller.signal,
        }));
  const controller = new AbortController();
  io.signal?.addEventListener("abort", () => controller.abort(io.signal?.reason), { once: true });

  if (args[0] === "--version" || args[0] === "-v") {
    io.stdout(await versionText(getCtx()));
    return EXIT.ok;
  }
  // Help is wrapped at the terminal's width (COLUMNS, else 80, when stdout is not a terminal).
  const helpWidth =
    (io.columns ?? (process.stdout.isTTY ? process.stdout.columns : undefined)) || Number(env.COLUMNS) || 80;

  let result: CommandResult | undefined;
  const program = new Command("azkeep");
  program
    .description(
      "Sign in to Microsoft Entra ID and hand out Azure access tokens, as the Azure CLI does, " +
        "with no usable token or secret in plain text on disk.",
    )
    .version(VERSION, "-v, --version", "print azkeep's version")
    .addOption(
      new Option("-o, --output <format>", `output format: ${OUTPUT_FORMATS.join(", ")}`)
        .argParser((v: string) => {
          if (!isOutputFormat(v)) throw new UsageError(invalidOutputMessage(v), { hint: USAGE_HINT });
          return v;
        })
        .default(globals.output),
    )
    .option("--query <jmespath>", "JMESPath query applied to the result (https://jmespath.org)")
    .option("--debug", "log what azkeep does to stderr (tokens and secrets are redacted)")
    .option("--verbose", "print what azkeep does (INFO lines) to stderr, as az --verbose")
    .option("--only-show-errors", "print errors only, no warnings")
    .showHelpAfterError(false)
    .configureHelp({
      showGlobalOptions: true,
      sortSubcommands: true,
      helpWidth,
      minWidthToWrap: 24,
      // `(default: 300)`, not `(default: "300")`: a number is printed as one.
      optionDescription(option) {
        return Help.prototype.optionDescription
          .call(this, option)
          .replace(/\(default: "(-?\d+(?:\.\d+)?)"\)/, "(default: $1)");
      },
    })
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      outputError: () => {},
    })
    .addHelpText(
      "after",
      "\n" +
        wrapText(
          "Exit codes: 0 ok, 1 error, 2 usage error, 3 credentials at risk (doctor), 130 interrupted; exec: the command's own (docs/exit-codes.md).",
          0,
          helpWidth,
        ).join("\n") +
        "\n" +
        "\nExamples:\n" +
        "  azkeep login                 sign in (a browser, else a device code)\n" +
        "  azkeep account get-access-token --query accessToken -o tsv\n" +
        "  azkeep emulator start        a local Entra ID + ARM emulator\n" +
        "  source <(azkeep completion bash)     completion (bash, zsh, fish)\n" +
        environmentHelp(helpWidth),
    );

  const lazy: Lazy = (load, map) => {
    return async (...actionArgs: unknown[]) => {
      const cmd = actionArgs[actionArgs.length - 1] as Command;
      const opts = cmd.opts<Record<string, unknown>>();
      const positional = actionArgs.slice(0, -2);
      const g = program.opts<{ output: string; query?: string; debug?: boolean; onlyShowErrors?: boolean }>();
      globals.output = isOutputFormat(g.output) ? g.output : "json";
      globals.query = g.query;
      if (g.query !== undefined) await checkQuery(g.query);
      const mod = await load();
      const cmdIO: CommandIO = {
        ctx: getCtx(),
        globals,
        stdout: (s) => io.stdout(s),
        signal: controller.signal,
      };
      const options = map ? map(opts, positional, cmd) : (opts as never);
      result = (await mod.run(options, cmdIO)) ?? {};
    };
  };
  registerAll(program, lazy);
  for (const c of program.commands) applyFrame(c, io);

  try {
    await program.parseAsync(args, { from: "user" });
    if (!result) return EXIT.ok;
    let value = result.value;
    if (value !== undefined) {
      if (globals.query) value = await applyQuery(value, globals.query);
      io.stdout(
        await formatOutput(value, globals.output, {
          color: globals.output === "jsonc" && getCtx().color,
          table: result.table,
          queryActive: globals.query !== undefined,
        }),
      );
    }
    if (result.wait) await result.wait;
    if (globals.verbose) getCtx().logger.info(commandRan(started));
    return result.exitCode ?? EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" ||
        e.code === "commander.version" ||
        e.code === "commander.help" ||
        e.exitCode === 0
      )
        return EXIT.ok;
      const msg = e.message.replace(/^error:\s*/i, "");
      io.stderr(`ERROR: ${redact(msg)}\n${USAGE_HINT}\n`);
      return EXIT.usage;
    }
    const { text, code } = errorText(e, { debug: globals.debug });
    io.stderr(text);
    return code;
  }
}

/**
 * A description written over several source lines reads as one paragraph (commander wraps it
 * at the terminal's width); blank lines, indented lines, list items and lines after a colon
 * keep their breaks.
 */
export function unwrapDescription(text: string): string {
  return text.replace(/([^\n:])\n(?=[^\s\-•*\n])/g, "$1 ");
}

function applyFrame(cmd: Command, io: RunIO): void {
  const d = cmd.description();
  if (d) cmd.description(unwrapDescription(d));
  cmd
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s), outputError: () => {} });
  for (const c of cmd.commands) applyFrame(c, io);
}

/** `azkeep --version`: the version, the build, Node, the key provider and the config folder. */
async function versionText(ctx: Context): Promise<string> {
  let provider: string;
  try {
    const { readConfig } = await import("../core/config.js");
    const key = (await readConfig(ctx)).store?.key;
    const requested = ctx.env.AZKEEP_STORE_PROVIDER?.trim();
    provider = key
      ? `${key.provider} (the store's key, config.json)`
      : requested
        ? `${requested} (AZKEEP_STORE_PROVIDER; nothing sealed yet)`
        : "none yet (chosen at the first sign-in: keyring, else keyutils, else passphrase)";
  } catch (e) {
    provider = `unknown (${e instanceof Error ? e.message : String(e)})`;
  }
  return (
    `azkeep ${VERSION}\n` +
    `build          ${BUILD}\n` +
    `node           ${process.version} (${process.platform} ${process.arch})\n` +
    `key provider   ${provider}\n` +
    `config folder  ${ctx.paths.configDir}\n`
  );
}

/** Entry point used by `bin/azkeep.js`. */
export async function main(argv: readonly string[]): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => {
    controller.abort(Object.assign(new Error("Interrupted"), { name: "AbortError" }));
    // Every wait azkeep makes listens to the signal; should one not (a bug), the process still
    // ends: files are only ever replaced by rename, so stopping anywhere leaves them whole.
    setTimeout(() => {
      process.stderr.write("ERROR: Interrupted.\n");
      process.exit(EXIT.interrupted);
    }, 3000).unref();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  // A reader that went away (`| head`, `| true`) is no error: stop writing, exit 0, as az.
  let stdoutClosed = false;
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    stdoutClosed = true;
  };
  const onStderrError = (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
  };
  process.stdout.on("error", onStdoutError);
  process.stderr.on("error", onStderrError);
  try {
    const code = await run(argv, {
      stdout: (s) => void (stdoutClosed || process.stdout.write(s)),
      stderr: (s) => void (process.stderr.destroyed || process.stderr.write(s)),
      signal: controller.signal,
    });
    return stdoutClosed ? EXIT.ok : code;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
