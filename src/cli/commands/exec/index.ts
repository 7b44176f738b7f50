import type { RegisterGroup } from "../../command.js";

export const register: RegisterGroup = (program, lazy) => {
  program
    .command("exec")
    .summary("run a command that gets its tokens from a private managed-identity endpoint")
    .description(
      "run CMD with a per-run managed-identity endpoint on 127.0.0.1 that the Azure SDKs, Terraform, " +
        "Pulumi, kubelogin and the Azure CLI (`az login --identity`) already speak. The child gets access " +
        "tokens for the audiences it asks for, in one subscription and tenant, while it runs; never a " +
        "refresh token or a secret. Only CMD and its descendants may call the endpoint. " +
        "Exit code: CMD's own (128+n when a signal ended it).",
    )
    .option(
      "-s, --subscription <subscription>",
      "the run's subscription (name or id); default: the current one",
    )
    .option("-t, --tenant <tenant>", "the tenant tokens are asked in; default: the subscription's")
    .option(
      "--allow-scope <scope...>",
      "the only audiences the child may get tokens for (e.g. https://management.azure.com/.default)",
    )
    .option("--no-shim", "do not put azkeep's az shim (exec mode) first on the child's PATH")
    .option(
      "--log <file>",
      "append the run's request log (caller, audience, outcome; no tokens) to this file",
    )
    .option("--nested", "allow running inside another azkeep exec")
    .argument("<command...>", "the command and its arguments, after --")
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  azkeep exec -- terraform plan\n" +
        "  azkeep exec --subscription Dev --allow-scope https://management.azure.com/.default -- pulumi up\n" +
        "  azkeep exec --log run.log -- python3 deploy.py\n" +
        "See docs/exec.md for which tool uses which protocol.\n",
    )
    .action(
      lazy(
        () => import("./exec.js"),
        (opts, args) => ({ ...opts, command: Array.isArray(args[0]) ? (args[0] as string[]) : [] }),
      ),
    );
};
