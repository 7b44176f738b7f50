/**
 * What both agent lanes do once argv is parsed — `azkeep account get-access-token`'s
 * (`cli/agent-lane.ts`) and the `az` shim's (`shim/agent-lane.ts`): ask the running agent for the
 * token and print it, in this process's smallest possible form (no store, no key providers, no
 * token policy, no network stack, no `node:crypto`).
 *
 * It answers only the plain case: a request the agent serves, no `--debug`/`--verbose`, no
 * generic OpenID sign-in (`--authority`), output that does not depend on the terminal, an agent
 * that answers. Everything else — no agent (the direct path, auto-start, agent-only errors), an
 * agent that goes away, a value the full lane words an error for — goes to `fallback` (the
 * lane's full bundle) before anything is written. Both sides shape and print through
 * `present.ts` and word errors through `error-text.ts`, so they print the same by construction.
 */
import { AgentGoneError } from "../agent/client.js";
import { reachAgent } from "../agent/start.js";
import { RESOURCE_TYPES } from "../core/clouds.js";
import { resolvePaths } from "../core/paths.js";
import { checkSubscriptionOrTenant, toAzShape } from "../core/tokens/az-shape.js";
import { formatExpiresOn } from "../core/tokens/time.js";
import { EXIT } from "../cli/exit-codes.js";
import { checkQuery } from "../cli/output/format.js";
import type { ParsedShimArgs } from "./argv.js";
import { errorText } from "./error-text.js";
import { chooseOutput, show, str, tokenQueryOf, type Mode } from "./present.js";
import { writeAllSync } from "./stdio.js";

/** The full lane; `agentGone`: this lane saw the agent go away mid-request. */
export type Fallback = (options?: { agentGone?: boolean }) => Promise<number>;

/**
 * Answers a parsed `account get-access-token` through the agent, or hands it to `fallback`
 * untouched. Resolves the exit code once all output is written.
 */
export async function answerFromAgent(
  p: ParsedShimArgs,
  mode: Mode,
  env: Readonly<Record<string, string | undefined>>,
  fallback: Fallback,
): Promise<number> {
  const resourceType = p.options.resourceType;
  if (
    env.AZKEEP_AGENT === "off" ||
    p.globals.debug ||
    p.globals.verbose ||
    str(p.options.authority) !== undefined ||
    str(p.options.clientId) !== undefined ||
    (resourceType !== undefined &&
      !(typeof resourceType === "string" && Object.hasOwn(RESOURCE_TYPES, resourceType)))
  )
    return fallback();
  let output;
  let conn;
  try {
    output = chooseOutput(p, env, mode);
    // jsonc's colours depend on the terminal: the full lane's Context decides them (the shim
    // never colours, so it needs no terminal).
    if (output === "jsonc" && mode === "azkeep") return fallback();
    // A bad query or flag combination: the full lane says so in its words.
    if (p.globals.query !== undefined) await checkQuery(p.globals.query);
    checkSubscriptionOrTenant(str(p.options.subscription), str(p.options.tenant));
    conn = await reachAgent({ paths: resolvePaths(env), env }, { lean: true });
  } catch {
    return fallback();
  }
  if (!conn) return fallback();
  let text: string;
  try {
    const answer = conn.getToken(tokenQueryOf(p)); // written now
    answer.catch(() => {});
    // The agent reads who this process is from /proc before it answers (~1 ms): meanwhile, the
    // time zone `expiresOn` is printed in is loaded (ICU's, 0.3–1.5 ms on its first use).
    formatExpiresOn(Date.now() / 1000 + 3600);
    const token = await answer;
    text = await show(toAzShape(token, Boolean(str(p.options.tenant))), p, output, mode, {
      color: () => false,
    });
  } catch (e) {
    // The agent went away mid-request: the full lane restarts it or answers directly, with its
    // one warning. Any other error is the agent's answer (locked, denied, not signed in).
    if (e instanceof AgentGoneError) return fallback({ agentGone: true });
    const { text: message, code } = errorText(e, mode, false);
    writeAllSync(2, message);
    return code;
  } finally {
    conn.close();
  }
  writeAllSync(1, text);
  return EXIT.ok;
}
