import type { Command } from "commander";
import type { RegisterGroup } from "../../command.js";
import type { StartOptions } from "./start.js";

export const register: RegisterGroup = (program, lazy) => {
  const group = program.command("emulator").description("a local Entra ID + Azure Resource Manager emulator");
  group
    .command("start")
    .description("start the emulator and print the URLs and environment a client needs (Ctrl-C stops it)")
    .option("--seed <file>", "tenants, users, apps and subscriptions as JSON (default: the built-in seed)")
    .option("--port <n>", "port of the plain HTTP endpoint (0 = any free port)", "0")
    .option("--https-port <n>", "port of the HTTPS endpoint (default: any free port)")
    .option("--proxy-port <n>", "port of the CONNECT proxy (default: any free port)")
    .option("--no-https", "plain HTTP only: no local CA, no HTTPS listener, no proxy")
    .option(
      "--data-dir <dir>",
      "where the local CA is kept (default: $AZKEEP_EMULATOR_DIR or ~/.local/share/azkeep/emulator)",
    )
    .addHelpText(
      "after",
      "\nWithout -o it prints how to use the emulator; with -o json (or yaml, tsv…) it prints a\n" +
        "machine-readable description (urls, env, seeded identities) instead. See docs/emulator.md.\n",
    )
    .action(
      lazy(
        () => import("./start.js"),
        (opts, _args, cmd: Command): StartOptions => ({
          ...(opts as Omit<StartOptions, "describe">),
          // A description for scripts only when -o was given explicitly; people get prose.
          describe: cmd.parent?.parent?.getOptionValueSource("output") === "cli",
        }),
      ),
    );
};
