/** `azkeep agent stop`. */
import type { CommandRun } from "../../command.js";
import { runningAgent } from "./common.js";

export const run: CommandRun<Record<string, never>> = async (_flags, io) => {
  const agent = await runningAgent(io.ctx);
  try {
    const st = await agent.status();
    await agent.stop();
    return { value: { stopped: true, pid: st.pid } };
  } finally {
    agent.close();
  }
};
