import type { RegisterGroup } from "../../command.js";

export const register: RegisterGroup = (program, lazy) => {
  program
    .command("logout")
    .description(
      "sign out an identity: remove its accounts, tokens and secrets (default: the current account's)",
    )
    .option("--username <name>", "user name or service principal app id to sign out")
    .action(lazy(() => import("./logout.js")));
};
