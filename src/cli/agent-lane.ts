/**
 * The agent lane of `azkeep account get-access-token`: when an agent runs, the token comes from
 * it, and this process needs nothing but the command line, the socket and the output format —
 * not the store, the key providers, the token policy, the network stack or `node:crypto`, whose
 * loading alone cost more than the whole answer (docs/benchmarks.md). `bin/azkeep.js` loads this
 * bundle (`dist/cli/agent-lane.cjs`) first for that command.
 *
 * What it answers and what it hands to `fallback` (the full fast lane, `shim/cli-fast.ts`) before
 * anything is written is `shim/agent-answer.ts`, shared with the `az` shim's agent lane.
 */
import { fastParse } from "../shim/fast-parse.js";
import { answerFromAgent, type Fallback } from "../shim/agent-answer.js";

/**
 * Answers `argv` through the agent, or hands it to `fallback` untouched. Resolves the exit code
 * once all output is written.
 */
export async function main(argv: readonly string[], fallback: Fallback): Promise<number> {
  const p = fastParse(argv);
  if (!p) return fallback();
  return answerFromAgent(p, "azkeep", process.env, fallback);
}
