/** `azkeep agent status`: exit 1 (with the status `running: false`) when no agent runs. */
import { reachAgent, socketPathOf } from "../../../agent/start.js";
import type { CommandRun } from "../../command.js";

export const run: CommandRun<Record<string, never>> = async (_flags, io) => {
  const agent = await reachAgent(io.ctx);
  if (!agent) {
    io.ctx.logger.warn("No azkeep agent runs; start it with `azkeep agent start`.");
    return {
      value: { running: false, socket: socketPathOf(io.ctx), configDir: io.ctx.paths.configDir },
      exitCode: 1,
    };
  }
  try {
    return { value: { running: true, ...(await agent.status()) } };
  } finally {
    agent.close();
  }
};
