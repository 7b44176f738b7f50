import type { RegisterGroup } from "../../command.js";

export const register: RegisterGroup = (program, lazy) => {
  const group = program
    .command("shim")
    .description("an `az` command for Terraform, Pulumi and the Azure SDKs that answers from azkeep");
  group
    .command("path")
    .summary("print the folder of the az shim, for PATH")
    .description(
      "print the folder holding azkeep's `az` shim, to put first on PATH.\n" +
        "The shim answers az version, az account show|list|get-access-token; other az commands go to the real az.",
    )
    .addHelpText(
      "after",
      '\nExample:\n  export PATH="$(azkeep shim path):$PATH"\n  terraform plan      # the azurerm provider now gets its tokens from azkeep\n',
    )
    .action(lazy(() => import("./path.js")));
};
