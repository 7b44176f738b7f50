/**
 * `azkeep agent unlock`: opens the store in the agent. With the passphrase provider the
 * passphrase is asked here and sent over the socket to the agent's vault process only (never
 * an argument, never the environment). Where a pinentry program is installed it asks (as
 * gpg-agent does: a desktop dialog under DISPLAY/WAYLAND_DISPLAY, else pinentry-curses/-tty on
 * this terminal), so the passphrase is typed into a program made for it; otherwise, or with
 * AZKEEP_PINENTRY=off, the terminal prompt asks.
 */
import { readlinkSync } from "node:fs";
import { UsageError } from "../../../core/errors.js";
import type { Env } from "../../../core/context.js";
import { findPinentry, pinentryGetPin, pinentryOptions } from "../../../agent/pinentry.js";
import type { CommandRun } from "../../command.js";
import { runningAgent } from "./common.js";

const PROMPT = "Passphrase of the azkeep store:";

/** The terminal on stdin (`/dev/pts/N`), for pinentry-curses/-tty; undefined when none. */
function stdinTerminal(): string | undefined {
  if (!process.stdin.isTTY) return undefined;
  try {
    const t = readlinkSync("/proc/self/fd/0");
    return /^\/dev\/(pts\/\d+|tty\w*)$/.test(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The passphrase through pinentry: a string, `null` when the person cancelled or let it time
 * out, undefined when no pinentry could be used (then the terminal prompt asks).
 */
async function askWithPinentry(env: Env): Promise<string | null | undefined> {
  if (env.AZKEEP_PINENTRY === "off") return undefined;
  const desktop = Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
  const tty = stdinTerminal();
  const pin = findPinentry({ desktop });
  if (!pin || (pin.kind === "tty" && !tty)) return undefined;
  const pinBuf = await pinentryGetPin(pinentryOptions(pin.program, env, { ttyname: tty, timeoutSec: 120 }), {
    title: "azkeep",
    description: "Unlock the azkeep agent: type the passphrase of the token store.",
    prompt: PROMPT,
  });
  if (!pinBuf) return pinBuf;
  const s = pinBuf.toString("utf8");
  pinBuf.fill(0);
  return s;
}

export const run: CommandRun<Record<string, never>> = async (_flags, io) => {
  const agent = await runningAgent(io.ctx);
  try {
    await agent.unlock(async () => {
      const viaPinentry = await askWithPinentry(io.ctx.env);
      if (viaPinentry === null)
        throw new UsageError("No passphrase was given (cancelled or timed out); the agent stays locked.", {
          hint: "Run `azkeep agent unlock` again.",
        });
      if (viaPinentry !== undefined) return viaPinentry;
      if (!io.ctx.prompter.interactive)
        throw new UsageError(
          "`azkeep agent unlock` asks for the store's passphrase on a terminal; run it in one.",
        );
      return io.ctx.prompter.ask(`${PROMPT} `, { secret: true });
    });
  } finally {
    agent.close();
  }
  // The vault answered the passphrase and closed that connection: the status is asked anew.
  const again = await runningAgent(io.ctx);
  try {
    return { value: await again.status() };
  } finally {
    again.close();
  }
};
