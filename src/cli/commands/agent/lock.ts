/** `azkeep agent lock`: ends the vault process (the unlocked store goes with its memory). */
import type { CommandRun } from "../../command.js";
import { runningAgent } from "./common.js";

export const run: CommandRun<Record<string, never>> = async (_flags, io) => {
  const agent = await runningAgent(io.ctx);
  try {
    return { value: await agent.lock() };
  } finally {
    agent.close();
  }
};
