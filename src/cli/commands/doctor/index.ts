import type { RegisterGroup } from "../../command.js";

export const register: RegisterGroup = (program, lazy) => {
  program
    .command("doctor")
    .description(
      "find credentials kept in plain text on this machine (Azure CLI, azd, AWS, gcloud, kubeconfigs) " +
        "and show how azkeep's own store is protected",
    )
    .addHelpText(
      "after",
      "\nExit codes: 0 when nothing is at risk (no high or medium finding), 3 when something is.\n" +
        "Output: a JSON report by default; `-o table` for one line per finding. Examples:\n" +
        "  azkeep doctor -o table\n" +
        "  azkeep doctor --query \"findings[?risk=='high'].fix\" -o tsv\n",
    )
    .action(
      lazy(
        () => import("./doctor.js"),
        () => ({}),
      ),
    );
};
