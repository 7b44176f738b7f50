/**
 * The agent lane of the `az` shim: `az account get-access-token …` — what Terraform, Pulumi and
 * the Azure SDKs run for every token — answered by a running agent, loading only the command
 * line (`route.ts`, `argv.ts`), the socket and the output format. `shim/az` loads this bundle
 * (`dist/shim/agent-lane.cjs`) first for that command; everything it does not answer goes to the
 * full shim (`az.ts`, `dist/shim/az.cjs`) before anything is written: what and when is
 * `agent-answer.ts`, shared with `azkeep account get-access-token`'s agent lane.
 *
 * It reads the command line exactly as the full shim does (`route`), so it takes nothing the
 * full shim would send elsewhere (a real az, azkeep's own commands), and it never passes
 * anything through itself: the shim's recursion guard stays the full shim's alone.
 */
import { answerFromAgent, type Fallback } from "./agent-answer.js";
import { route, type Route } from "./route.js";

/**
 * Answers `argv` through the agent, or hands it to `fallback` (the full shim) untouched.
 * Resolves the exit code once all output is written.
 */
export async function main(argv: readonly string[], fallback: Fallback): Promise<number> {
  const env = process.env;
  // Inside `azkeep exec` the run's endpoint answers, never the agent (`run.ts`).
  if (env.AZKEEP_EXEC_ENDPOINT) return fallback();
  let r: Route;
  try {
    r = route(argv);
  } catch {
    // A bad flag: the full shim says so in az's words.
    return fallback();
  }
  if (r.kind !== "answer" || r.parsed.command !== "account get-access-token") return fallback();
  return answerFromAgent(r.parsed, "az", env, fallback);
}
