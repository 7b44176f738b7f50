/** Shared pieces of the sign-in tests: a Context with captured output, headless Chromium. */
import { createServer } from "node:net";
import type { Context, Env } from "../../src/core/context.js";
import { createNodeContext } from "../../src/core/context.js";

export interface Captured {
  warnings: string[];
  messages: string[];
  status: string[];
  debug: string[];
}

export function testContext(
  opts: {
    env?: Env;
    open?: (url: string) => Promise<boolean>;
    stdin?: string | (() => Promise<string>);
  } = {},
): { ctx: Context; out: Captured } {
  const out: Captured = { warnings: [], messages: [], status: [], debug: [] };
  const base = createNodeContext({ env: { ...opts.env }, debug: true, write: () => {} });
  const ctx: Context = {
    ...base,
    logger: {
      debug: (m) => out.debug.push(m),
      info: (m) => out.debug.push(m),
      warn: (m) => out.warnings.push(m),
    },
    // As on a terminal: the in-process device-code tests see the QR code too.
    progress: { status: (m) => out.status.push(m), message: (m) => out.messages.push(m), terminal: true },
    browser: { open: opts.open ?? (async () => false) },
    prompter: {
      interactive: false,
      ask: () => Promise.reject(new Error("no terminal in tests")),
      readStdin: () => (typeof opts.stdin === "function" ? opts.stdin() : Promise.resolve(opts.stdin ?? "")),
    },
  };
  return { ctx, out };
}

/** A free TCP port on 127.0.0.1 (for tests of --port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
