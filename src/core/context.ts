/**
 * The Context: every side effect azkeep's library has (clock, network, environment,
 * filesystem root, randomness, browser, prompts, progress output, logging) comes in through
 * this one object, so tests swap them without module mocking.
 *
 * This module is the only place in `core/` that reads `process.env`, `Date.now()`, the global
 * `fetch`, `os.homedir()` (through `paths.ts`, which the agent lane loads alone) or the process's
 * standard streams.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createNetworkFetch } from "./net.js";
import { resolvePaths, type Env, type Paths } from "./paths.js";
import { redact } from "./redact.js";

export type { Env, Paths } from "./paths.js";
export { resolvePaths } from "./paths.js";

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface Random {
  bytes(n: number): Uint8Array;
  uuid(): string;
}

export type LogLevel = "debug" | "info" | "warn";

export interface Logger {
  /** Only shown with `--debug`. Always passed through redaction. */
  debug(message: string): void;
  info(message: string): void;
  /** Shown as `WARNING: …` on stderr unless `--only-show-errors`. */
  warn(message: string): void;
}

export interface Prompter {
  /** True when a person can answer (stdin and stderr are terminals). */
  readonly interactive: boolean;
  /** Asks for a line; `secret` hides the echo. Rejects with a usage error when not interactive. */
  ask(question: string, options?: { secret?: boolean }): Promise<string>;
  /** Reads all of stdin (for `--password-stdin`, `token decode -`). */
  readStdin(): Promise<string>;
}

export interface BrowserOpener {
  /** Opens `url` in the user's browser; resolves false when none could be started. */
  open(url: string): Promise<boolean>;
}

export interface Progress {
  /** A transient status line on stderr (spinner-free, one line per call). */
  status(message: string): void;
  /** Plain text to stderr, for messages a person must read (device code, URLs). */
  message(message: string): void;
  /**
   * True when stderr, where these messages go, is a terminal. Pictures for a person (the
   * device code's QR code) are drawn only then: piped into a log or a CI job they are noise.
   */
  readonly terminal: boolean;
}

export interface Context {
  clock: Clock;
  fetch: typeof fetch;
  env: Env;
  paths: Paths;
  random: Random;
  logger: Logger;
  prompter: Prompter;
  browser: BrowserOpener;
  progress: Progress;
  /** Whether colour may be used on stderr/stdout (false with NO_COLOR or no TTY). */
  color: boolean;
  /**
   * Aborted on Ctrl-C / SIGTERM: every wait in the library that is not given a signal of its
   * own (the store lock) ends on it. Absent in tests and library use that do not set one.
   */
  readonly signal?: AbortSignal | undefined;
}

export interface NodeContextOptions {
  debug?: boolean;
  /** az's `--verbose`: `INFO:` lines (what was done, how long it took) without the debug log. */
  verbose?: boolean;
  onlyShowErrors?: boolean;
  env?: Env;
  /** Where log lines go; stderr by default. */
  write?: (line: string) => void;
  /** See `Context.signal`; read lazily (a getter here is read only when a wait needs it). */
  readonly signal?: AbortSignal | undefined;
}

const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const t = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

function makePrompter(): Prompter {
  // Lazy: touching process.stdin/stderr sets up their streams (~3 ms at start-up), which
  // get-access-token's hot path never needs.
  let interactive: boolean | undefined;
  return {
    get interactive() {
      return (interactive ??= Boolean(process.stdin.isTTY && process.stderr.isTTY));
    },
    async ask(question, options = {}) {
      const { askOnTerminal } = await import("./terminal.js");
      return askOnTerminal(question, options.secret === true);
    },
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
  };
}

function makeBrowser(env: Env): BrowserOpener {
  return {
    async open(url) {
      const { openBrowser } = await import("./browser-open.js");
      return openBrowser(url, env);
    },
  };
}

/** How long a request may take before a person at a terminal is told what azkeep waits for. */
export const SLOW_REQUEST_MS = 3_000;

/**
 * A person at a terminal waiting on a slow identity provider (or ARM, or a proxy) sees one line
 * naming the host, instead of a silent cursor. Only on a terminal: scripts and logs get no noise.
 */
function noticeSlow(fetch: typeof globalThis.fetch, progress: Progress): typeof globalThis.fetch {
  return (input, init) => {
    const timer = setTimeout(() => {
      if (!progress.terminal) return;
      let host = "the server";
      try {
        host = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url)
          .host;
      } catch {
        /* an unparsable URL fails in fetch itself */
      }
      progress.status(`Waiting for ${host}… (Ctrl-C to stop)`);
    }, SLOW_REQUEST_MS);
    timer.unref();
    return fetch(input, init).finally(() => clearTimeout(timer));
  };
}

/** The Context of a real process. Only the CLI's entry point and library users call this. */
export function createNodeContext(options: NodeContextOptions = {}): Context {
  const env = options.env ?? process.env;
  const write = options.write ?? ((line: string) => void process.stderr.write(line + "\n"));
  let colorValue: boolean | undefined;
  const useColor = () =>
    (colorValue ??= !env.NO_COLOR && Boolean(process.stderr.isTTY) && env.TERM !== "dumb");
  const quiet = options.onlyShowErrors === true;
  // Lazy for the same reason as the prompter's (the hot path never asks).
  let stderrTerminal: boolean | undefined;
  const logger: Logger = {
    debug: options.debug ? (m) => write(`DEBUG: ${redact(m)}`) : () => {},
    info: options.debug || options.verbose ? (m) => write(`INFO: ${redact(m)}`) : () => {},
    warn: quiet
      ? () => {}
      : (m) => write(useColor() ? `\x1b[33mWARNING: ${redact(m)}\x1b[0m` : `WARNING: ${redact(m)}`),
  };
  const progress: Progress = {
    status: quiet ? () => {} : (m) => write(m),
    message: (m) => write(m),
    get terminal() {
      return (stderrTerminal ??= Boolean(process.stderr.isTTY));
    },
  };
  return {
    clock: realClock,
    // HTTPS_PROXY / NO_PROXY / NODE_EXTRA_CA_CERTS, over node:http(s) (see net.ts for why).
    fetch: noticeSlow(
      createNetworkFetch({
        env,
        base: globalThis.fetch.bind(globalThis),
        extraCaTrustedByNode: env.NODE_EXTRA_CA_CERTS === process.env.NODE_EXTRA_CA_CERTS,
      }),
      progress,
    ),
    env,
    paths: resolvePaths(env),
    random: { bytes: (n) => new Uint8Array(randomBytes(n)), uuid: () => randomUUID() },
    logger,
    prompter: makePrompter(),
    browser: makeBrowser(env),
    progress,
    get color() {
      return useColor();
    },
    get signal() {
      return options.signal;
    },
  };
}
