import { Option } from "commander";
import type { RegisterGroup } from "../../command.js";

const PROVIDERS = ["keyring", "keyutils", "passphrase", "insecure-file", "memory"];

export const register: RegisterGroup = (program, lazy) => {
  const group = program
    .command("store")
    .description("the sealed token store: how it is protected, and changing its key provider");
  group
    .command("status")
    .description("show the key provider, the store's files and their modes, what protects what, and warnings")
    .addHelpText(
      "after",
      "\nExamples:\n  azkeep store status\n  azkeep store status --query provider -o tsv\n  azkeep store status -o table\n",
    )
    .action(
      lazy(
        () => import("./status.js"),
        () => ({}),
      ),
    );
  group
    .command("repair")
    .description(
      "recover from a lost or damaged config.json or profile.json: find the store's key again from " +
        "tokens.sealed's header, and restore the account list from the sealed credentials",
    )
    .option("--passphrase-file <file>", "file holding the passphrase, if the store was sealed with one")
    .option(
      "--accept-rollback",
      "use a tokens.sealed older than the last one azkeep wrote (a backup put back on purpose): its sign-ins come back",
    )
    .addHelpText(
      "after",
      "\nNothing is changed unless a key provider here opens tokens.sealed. Damaged files are moved aside\n" +
        "(never deleted). Then run `azkeep account list --refresh` to find the subscriptions again.\n" +
        "Examples:\n  azkeep store repair\n  AZKEEP_PASSPHRASE_FILE=~/.azkeep-pass azkeep store repair\n" +
        "  azkeep store repair --accept-rollback\n",
    )
    .action(
      lazy(
        () => import("./repair.js"),
        (opts) => ({
          ...(typeof opts.passphraseFile === "string" ? { passphraseFile: opts.passphraseFile } : {}),
          ...(opts.acceptRollback === true ? { acceptRollback: true } : {}),
        }),
      ),
    );
  group
    .command("migrate")
    .description(
      "re-seal the store under a new key of another (or the same) provider; the old key is deleted after",
    )
    .addOption(
      new Option("--to <provider>", "the key provider to move to").choices(PROVIDERS).makeOptionMandatory(),
    )
    .option(
      "--passphrase-file <file>",
      "file holding the current passphrase (instead of AZKEEP_PASSPHRASE or a prompt)",
    )
    .option(
      "--new-passphrase-file <file>",
      "file holding the new passphrase, with --to passphrase (instead of AZKEEP_NEW_PASSPHRASE or a prompt)",
    )
    .addHelpText(
      "after",
      "\nProviders: keyring (OS keyring), keyutils (Linux kernel keyring; gone after a reboot),\n" +
        "passphrase (scrypt), insecure-file (the key in a plain file beside the store: an explicit opt-in).\n" +
        "Examples:\n  azkeep store migrate --to keyutils\n  AZKEEP_NEW_PASSPHRASE_FILE=… azkeep store migrate --to passphrase\n",
    )
    .action(
      lazy(
        () => import("./migrate.js"),
        (opts) => ({
          to: String(opts.to),
          ...(typeof opts.passphraseFile === "string" ? { passphraseFile: opts.passphraseFile } : {}),
          ...(typeof opts.newPassphraseFile === "string"
            ? { newPassphraseFile: opts.newPassphraseFile }
            : {}),
        }),
      ),
    );
};
