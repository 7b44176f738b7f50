/**
 * `azkeep account get-access-token` (flags in `../account/get-access-token.ts`). This is the
 * hot path (scripts call it in loops), so the token policy and the store are imported only here.
 */
import type { GetAccessTokenFlags } from "../account/get-access-token.js";
import type { CommandRun } from "../../command.js";

export const run: CommandRun<GetAccessTokenFlags> = async (flags, io) => {
  const [{ getAccessToken }, { openTokenDeps }, { agentDelegate }] = await Promise.all([
    import("../../../core/tokens/get-access-token.js"),
    import("../../../core/tokens/deps.js"),
    import("../../../agent/attach.js"),
  ]);
  // Through the agent when it runs (agent-only mode: only then).
  const deps = { ...(await openTokenDeps(io.ctx, io.signal)), delegate: agentDelegate(io.ctx) };
  const value = await getAccessToken(io.ctx, deps, {
    resource: flags.resource,
    resourceType: flags.resourceType,
    scope: Array.isArray(flags.scope) ? flags.scope : undefined,
    subscription: flags.subscription ?? flags.name,
    tenant: flags.tenant,
    claimsChallenge: flags.claimsChallenge,
    forceRefresh: flags.forceRefresh,
    authority: flags.authority,
    clientId: flags.clientId,
  });
  return { value };
};
