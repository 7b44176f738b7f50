import type { RegisterGroup } from "../../command.js";
import { Option } from "commander";
import { registerGetAccessToken } from "./get-access-token.js";

export const register: RegisterGroup = (program, lazy) => {
  const account = program.command("account").description("the accounts (subscriptions) you are signed in to");
  account
    .command("list")
    .description("list the subscriptions of the active cloud that are Enabled (--all: every cloud and state)")
    .option("--all", "include every cloud and subscriptions that are not Enabled")
    .option("--refresh", "discover the subscriptions again for every signed-in identity")
    .action(lazy(() => import("./list.js")));
  account
    .command("show")
    .description(
      "show the default subscription of the active cloud, or the one named (as az: with environmentName)",
    )
    .option("-s, --subscription <id-or-name>", "subscription id or name (case-insensitive)")
    .addOption(new Option("-n, --name <id-or-name>", "the same as --subscription").hideHelp())
    .action(lazy(() => import("./show.js")));
  account
    .command("set")
    .description("set the default subscription")
    .option("-s, --subscription <id-or-name>", "subscription id or name (case-insensitive)")
    .addOption(new Option("-n, --name <id-or-name>", "the same as --subscription").hideHelp())
    .option("--username <name>", "when several signed-in identities reach the subscription, use this one")
    .action(lazy(() => import("./set.js")));
  account
    .command("clear")
    .description("sign out everyone: remove every account, token and secret from the store")
    .action(lazy(() => import("./clear.js")));
  registerGetAccessToken(account, lazy);
};
