import { InvalidArgumentError, Option } from "commander";
import type { RegisterGroup } from "../../command.js";

const METHODS = ["delete", "get", "head", "options", "patch", "post", "put"];

export const register: RegisterGroup = (program, lazy) => {
  program
    .command("rest")
    .summary("an HTTP request with a token for the URL's audience, as az rest")
    .description(
      "send an HTTP request with a token for the URL's audience, as `az rest` (ARM, Microsoft Graph, or --resource).\n" +
        "A token for a well-known audience is never sent to a host outside that audience.",
    )
    .addOption(
      // az takes the method in any case (`-m GET`, `-m Put`).
      new Option("-m, --method <method>", `HTTP method (${METHODS.join(", ")}; any case)`)
        .default("get")
        .argParser((v: string) => {
          const m = v.toLowerCase();
          if (!METHODS.includes(m))
            throw new InvalidArgumentError(`Allowed choices are ${METHODS.join(", ")} (in any case).`);
          return m;
        }),
    )
    .option(
      "-u, --url <url>",
      "the URL; without a host it is an ARM path, and {subscriptionId} becomes the current subscription",
    )
    .addOption(new Option("--uri <url>", "the same as --url").hideHelp())
    .option("-b, --body <body>", "the request body (JSON), or @file to read it from a file")
    .option("--headers <headers...>", "headers as key=value pairs or a JSON object")
    .option("--uri-parameters <params...>", "query parameters as key=value pairs or a JSON object")
    .addOption(new Option("--url-parameters <params...>", "the same as --uri-parameters").hideHelp())
    .option("--resource <resource>", "the token's audience, when it cannot be derived from the URL")
    .option("--skip-authorization-header", "send no Authorization header")
    .option(
      "--token-host <hosts...>",
      "also send the token of a custom --resource to these hosts (by default only to the resource's own host and its subdomains)",
    )
    .option("--force-refresh", "get a new token instead of the cached one")
    .option(
      "--authority <issuer>",
      "send the token of a generic OpenID sign-in (`azkeep login --authority …`) to the --url host (an absolute https URL)",
    )
    .option("--client-id <id>", "with --authority: the client whose sign-in to use")
    .addHelpText(
      "after",
      "\nExamples:\n" +
        '  azkeep rest --url "/subscriptions/{subscriptionId}/resourcegroups?api-version=2022-09-01"\n' +
        "  azkeep rest --url https://graph.microsoft.com/v1.0/me --query displayName -o tsv\n" +
        '  azkeep rest -m put --url "/subscriptions/{subscriptionId}/resourcegroups/rg1?api-version=2022-09-01" --body \'{"location":"westeurope"}\'\n',
    )
    .action(lazy(() => import("./rest.js")));
};
