/**
 * The agent lane of `azkeep account get-access-token`: when an agent runs, the token comes from
 * it, and this process needs nothing but the command line, the socket and the output format —
 * not the store, the key providers, the token policy, the network stack or `node:crypto`, whose
 * loading alone cost more than the whole answer (docs/benchmarks.md). `bin/azkeep.js` loads this
 * bundle (`dist/cli/agent-lane.cjs`) first for that command.
 *
 * It answers only the plain case: a request the agent serves, no `--debug`/`--verbose`, no
 * generic OpenID sign-in (`--authority`), an agent that answers. Everything else — no agent (the
 * direct path, auto-start, agent-only errors), an agent that goes away, a flag it does not take —
 * goes to `fallback` (the full fast lane, `shim/cli-fast.ts`) before anything is written, so the
 * two lanes print the same by construction: both shape and print through `shim/present.ts`.
 */
import { AgentGoneError } from "../agent/client.js";
import { reachAgent } from "../agent/start.js";
import { resolvePaths } from "../core/paths.js";
import { checkSubscriptionOrTenant, toAzShape } from "../core/tokens/az-shape.js";
import { formatExpiresOn } from "../core/tokens/time.js";
import { errorText } from "./error-text.js";
import { EXIT } from "./exit-codes.js";
import { checkQuery } from "./output/format.js";
import { fastParse } from "../shim/fast-parse.js";
import { chooseOutput, show, str, tokenQueryOf } from "../shim/present.js";
import { writeAllSync } from "../shim/stdio.js";

/**
 * Answers `argv` through the agent, or hands it to `fallback` untouched. Resolves the exit code
 * once all output is written.
 */
export async function main(
  argv: readonly string[],
  fallback: (options?: { agentGone?: boolean }) => Promise<number>,
): Promise<number> {
  const env = process.env;
  const p = fastParse(argv);
  if (
    !p ||
    env.AZKEEP_AGENT === "off" ||
    p.globals.debug ||
    p.globals.verbose ||
    str(p.options.authority) !== undefined ||
    str(p.options.clientId) !== undefined
  )
    return fallback();
  let output;
  let conn;
  try {
    output = chooseOutput(p, env, "azkeep");
    // jsonc's colours depend on the terminal: the full lane's Context decides them.
    if (output === "jsonc") return fallback();
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
    text = await show(toAzShape(token, Boolean(str(p.options.tenant))), p, output, "azkeep", {
      color: () => false,
    });
  } catch (e) {
    // The agent went away mid-request: the full lane restarts it or answers directly, with its
    // one warning. Any other error is the agent's answer (locked, denied, not signed in).
    if (e instanceof AgentGoneError) return fallback({ agentGone: true });
    const { text: message, code } = errorText(e, { debug: false });
    writeAllSync(2, message);
    return code;
  } finally {
    conn.close();
  }
  writeAllSync(1, text);
  return EXIT.ok;
}
