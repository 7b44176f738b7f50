import type { RegisterGroup } from "../../command.js";

export const register: RegisterGroup = (program, lazy) => {
  const group = program
    .command("import")
    .description("move an existing sign-in from another tool into azkeep's sealed store");
  group
    .command("az")
    .description(
      "import the Azure CLI's accounts, refresh tokens, access tokens and service principal secrets " +
        "(azureProfile.json, msal_token_cache.json, service_principal_entries.json, accessTokens.json)",
    )
    .option("--config-dir <dir>", "the Azure CLI's folder (default: AZURE_CONFIG_DIR, else ~/.azure)")
    .option(
      "--shred",
      "then overwrite and delete the plaintext token and secret files, once the imported sign-ins " +
        "have worked against the identity provider (azureProfile.json is kept: it holds no secrets)",
    )
    .addHelpText(
      "after",
      "\nPrints a summary of what was imported (no secrets). With --shred, exit code 1 when the files\n" +
        "were kept, with the reason. Examples:\n" +
        "  azkeep import az\n" +
        "  azkeep import az --shred\n" +
        "  azkeep import az --config-dir /srv/ci/.azure -o table\n",
    )
    .action(
      lazy(
        () => import("./az.js"),
        (opts) => ({
          ...(typeof opts.configDir === "string" ? { configDir: opts.configDir } : {}),
          shred: opts.shred === true,
        }),
      ),
    );
};
