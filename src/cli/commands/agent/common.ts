/** What the `agent` commands share: reaching the running agent, or saying how to start one. */
import { AzkeepError } from "../../../core/errors.js";
import type { Context } from "../../../core/context.js";
import type { AgentConnection } from "../../../agent/client.js";
import { reachAgent, socketPathOf } from "../../../agent/start.js";

export async function runningAgent(ctx: Context): Promise<AgentConnection> {
  const agent = await reachAgent(ctx);
  if (!agent) {
    throw new AzkeepError(
      "not_found",
      `No azkeep agent runs for ${ctx.paths.configDir} (socket ${socketPathOf(ctx)}).`,
      {
        hint: "Run `azkeep agent start` to start it.",
      },
    );
  }
  return agent;
}
