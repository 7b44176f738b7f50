/**
 * `azkeep agent unlock`: opens the store in the agent. With the passphrase provider the
 * passphrase is asked here, on the terminal, and sent over the socket to the agent's vault
 * process only (never an argument, never the environment).
 */
import { UsageError } from "../../../core/errors.js";
import type { CommandRun } from "../../command.js";
import { runningAgent } from "./common.js";

export const run: CommandRun<Record<string, never>> = async (_flags, io) => {
  const agent = await runningAgent(io.ctx);
  try {
    await agent.unlock(async () => {
      if (!io.ctx.prompter.interactive)
        throw new UsageError(
          "`azkeep agent unlock` asks for the store's passphrase on a terminal; run it in one.",
        );
      return io.ctx.prompter.ask("Passphrase of the azkeep store: ", { secret: true });
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
