/**
 * `azkeep account get-access-token`: az's flags, rules, fields and exit codes (reference §2.4).
 * This module only declares the flags (it is loaded with every command); the code is in
 * `../token/get-access-token-run.ts`, loaded when the command runs — a separate module because
 * esbuild's code splitting cannot lazily import a module that is also imported statically.
 */
import { Option, type Command } from "commander";
import { RESOURCE_TYPES, type ResourceType } from "../../../core/clouds.js";
import type { Lazy } from "../../command.js";

export interface GetAccessTokenFlags {
  resource?: string;
  resourceType?: ResourceType;
  /** `true` for a bare `--scope` (as az, the default resource then). */
  scope?: string[] | true;
  subscription?: string;
  name?: string;
  tenant?: string;
  claimsChallenge?: string;
  forceRefresh?: boolean;
  authority?: string;
  clientId?: string;
}

/** Declares the command on the `account` group; its code loads only when it runs. */
export function registerGetAccessToken(account: Command, lazy: Lazy): void {
  account
    .command("get-access-token")
    .summary("get a token for a resource (cached while more than 5 minutes remain)")
    .description(
      "get a token for a resource, from the cache while more than 5 minutes remain (otherwise refreshed).\n" +
        "Output as az: accessToken, expiresOn (local time), expires_on (epoch seconds), subscription, tenant, tokenType.",
    )
    .option(
      "--resource <resource>",
      "a v1 resource, e.g. https://vault.azure.net (default: Azure Resource Manager)",
    )
    .addOption(
      new Option("--resource-type <type>", "a resource of the account's cloud").choices(
        Object.keys(RESOURCE_TYPES),
      ),
    )
    .option(
      "--scope [scopes...]",
      "v2 scopes, e.g. https://graph.microsoft.com/.default (wins over --resource)",
    )
    .option(
      "-s, --subscription <id-or-name>",
      "the subscription whose identity and tenant to use (default: the default one)",
    )
    .addOption(new Option("-n, --name <id-or-name>", "the same as --subscription").hideHelp())
    .option("-t, --tenant <tenant>", "get the token from this tenant (then `subscription` is left out)")
    .option(
      "--claims-challenge <claims>",
      "a claims challenge from a resource's WWW-Authenticate header (JSON or base64): skips the cache",
    )
    .option(
      "--force-refresh",
      "ask the identity provider for a new token instead of serving the cached one (which it replaces)",
    )
    .option(
      "--authority <issuer>",
      "the token of a generic OpenID sign-in (`azkeep login --authority ISSUER --client-id ID`) instead of Azure's",
    )
    .option("--client-id <id>", "with --authority: the client whose sign-in to use, when there are several")
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  azkeep account get-access-token --query accessToken -o tsv\n" +
        "  azkeep account get-access-token --resource-type ms-graph\n" +
        "  azkeep account get-access-token --scope https://storage.azure.com/.default --tenant contoso.com\n",
    )
    .action(lazy(() => import("../token/get-access-token-run.js")));
}
