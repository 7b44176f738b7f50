/** `azkeep rest`: see core/tokens/rest.ts for the rules. */
import { UsageError } from "../../../core/errors.js";
import type { RestMethod } from "../../../core/tokens/rest.js";
import type { CommandRun } from "../../command.js";

export interface RestFlags {
  method?: RestMethod;
  url?: string;
  uri?: string;
  body?: string;
  headers?: string[];
  uriParameters?: string[];
  urlParameters?: string[];
  resource?: string;
  skipAuthorizationHeader?: boolean;
  tokenHost?: string[];
  forceRefresh?: boolean;
  authority?: string;
  clientId?: string;
}

export const run: CommandRun<RestFlags> = async (flags, io) => {
  const url = flags.url ?? flags.uri;
  if (!url) throw new UsageError("the following arguments are required: --url/-u");
  const [{ rest }, { openTokenDeps, cloudForRest }, { agentDelegate }] = await Promise.all([
    import("../../../core/tokens/rest.js"),
    import("../../../core/tokens/deps.js"),
    import("../../../agent/attach.js"),
  ]);
  // Through the agent when it runs (agent-only mode: only then).
  const deps = { ...(await openTokenDeps(io.ctx, io.signal)), delegate: agentDelegate(io.ctx) };
  const cloud = await cloudForRest(io.ctx, deps.store);
  const result = await rest(
    io.ctx,
    { ...deps, cloud },
    {
      method: flags.method,
      url,
      body: flags.body,
      headers: flags.headers,
      uriParameters: [...(flags.uriParameters ?? []), ...(flags.urlParameters ?? [])],
      resource: flags.resource,
      skipAuthorizationHeader: flags.skipAuthorizationHeader,
      tokenHosts: flags.tokenHost,
      forceRefresh: flags.forceRefresh,
      authority: flags.authority,
      clientId: flags.clientId,
    },
  );
  if (result.json !== undefined) return { value: result.json };
  if (result.text !== undefined) io.stdout(result.text.endsWith("\n") ? result.text : `${result.text}\n`);
  return {};
};
