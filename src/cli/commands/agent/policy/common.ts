/** What the `agent policy` commands share: one call to the agent, and the rules as table rows. */
import type { CallerMatch, RequestMatch, Rule } from "../../../../agent/policy.js";
import type { PolicyChange, PolicyView } from "../../../../agent/protocol.js";
import type { CommandIO, CommandResult } from "../../../command.js";
import { runningAgent } from "../common.js";

function conditions(m: CallerMatch | RequestMatch | undefined): string {
  return Object.entries(m ?? {})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");
}

/** One row per rule for `-o table`, in the order they decide. */
export function ruleRows(view: PolicyView): Record<string, unknown>[] {
  return view.rules.map((r: Rule, i) => ({
    order: i + 1,
    name: r.name,
    action: r.action,
    caller: conditions(r.caller) || "(any)",
    request: conditions(r.request) || "(any)",
    remember: r.remember ?? "-",
  }));
}

/**
 * Sends `change` to the running agent. A change comes back only after the person allowed it
 * on the agent's pinentry; a refusal is the agent's `denied` error (one `ERROR:` line, exit 1).
 */
export async function policyRequest(io: CommandIO, change: PolicyChange): Promise<CommandResult> {
  const agent = await runningAgent(io.ctx);
  let view: PolicyView;
  try {
    if (change.kind !== "show")
      io.ctx.progress.status(
        "Confirm the change on the azkeep agent's pinentry (where it was started or unlocked).",
      );
    view = await agent.policy(change);
  } finally {
    agent.close();
  }
  return { value: view, table: (v) => ruleRows(v as PolicyView) };
}
