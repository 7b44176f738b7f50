/** `azkeep agent policy show|add|remove|reset`: the sealed release policy (docs/policy.md). */
import type { Command } from "commander";
import type { Lazy } from "../../../command.js";

const CONFIRM_NOTE =
  "\nThe agent shows the change on its pinentry (on the terminal `azkeep agent start` or `azkeep agent unlock` " +
  "ran in, or a desktop dialog) with the program that asks, and makes it only when you choose Allow. " +
  "Deny, a timeout or no pinentry: nothing changes, exit 1. Every change and refusal is in `azkeep agent log`.\n";

export function registerPolicy(agent: Command, lazy: Lazy): void {
  const group = agent
    .command("policy")
    .description(
      "the release policy: which programs get tokens, account data and store writes from the agent; " +
        "every change is confirmed by you on the agent's pinentry",
    );
  group
    .command("show")
    .description("the rules (in the order they decide) and the defaults, as the agent verified them")
    .addHelpText(
      "after",
      "\nAn edited policy.json, or an older copy put back, is an error naming the file (exit 1).\n" +
        "Examples:\n  azkeep agent policy show -o table\n  azkeep agent policy show --query rules[].name -o tsv\n",
    )
    .action(lazy(() => import("./show.js")));
  group
    .command("add")
    .description(
      "add a rule (at the end, or --before another): the first rule that matches a request decides, the defaults the rest",
    )
    .option("--name <name>", "the rule's name (letters, digits, . _ -), shown in prompts and the log")
    .option("--action <action>", "allow (no prompt), confirm (ask you; remembered), deny")
    .option(
      "--exe <glob>",
      "caller: the executable's real path (/usr/bin/terraform, /opt/**/bin/*), or its file name (terraform)",
    )
    .option("--cwd <glob>", "caller: the folder it runs in (/home/me/infra/**)")
    .option("--ancestor <glob>", "caller: a parent process's executable, path or name (code, sshd)")
    .option("--argv <glob>", "caller: its arguments joined by spaces, as the program says them (with --exe)")
    .option("--tty <tty>", "caller: its terminal (/dev/pts/3; `tty` prints yours)")
    .option("--unit <glob>", "caller: its systemd unit (cron.service, app-*.scope)")
    .option(
      "--terminal <bool>",
      "caller: true = has a terminal, false = has none (cron, services, background jobs)",
    )
    .option("--container <bool>", "caller: true = inside a container, false = outside")
    .option("--run <run>", "caller: true = through `azkeep exec`, false = not, or an exec run's id")
    .option(
      "--audience <glob>",
      "request: the token's audience (https://graph.microsoft.com, *vault.azure.net*)",
    )
    .option("--tenant <tenant>", "request: the tenant id asked for")
    .option("--subscription <id>", "request: the subscription asked for")
    .option(
      "--kind <kind>",
      "request: token, profile (account data) or write (sign-in, sign-out, account set)",
    )
    .option("--remember <duration>", "with --action confirm: how long an approval lasts (30m, 1h, 8h)")
    .option("--before <name>", "put the rule before this one (it decides first)")
    .addHelpText(
      "after",
      CONFIRM_NOTE +
        "A bad flag is a usage error (exit 2) before the agent is asked.\n" +
        "Examples:\n" +
        "  # Terraform from one folder, ARM tokens without a prompt\n" +
        "  azkeep agent policy add --name terraform-infra --action allow --exe /usr/bin/terraform \\\n" +
        "      --cwd '/home/me/infra/**' --audience https://management.azure.com\n" +
        "  # Graph for `azkeep rest` only, denied to everything else\n" +
        "  azkeep agent policy add --name graph-for-rest --action allow --exe /usr/bin/node \\\n" +
        "      --argv '* */bin/azkeep.js rest *' --audience https://graph.microsoft.com\n" +
        "  azkeep agent policy add --name no-graph --action deny --audience https://graph.microsoft.com\n" +
        "  # this shell: ask once, then remember for an hour\n" +
        "  azkeep agent policy add --name shell-for-an-hour --action confirm --tty $(tty) --remember 1h\n",
    )
    .action(
      lazy(
        () => import("./add.js"),
        (opts) => {
          const o: Record<string, string> = {};
          for (const [k, v] of Object.entries(opts)) if (typeof v === "string") o[k] = v;
          return o;
        },
      ),
    );
  group
    .command("remove")
    .description("remove the rule named NAME")
    .argument("<name>", "the rule's name (`azkeep agent policy show` lists them)")
    .addHelpText("after", CONFIRM_NOTE + "Examples:\n  azkeep agent policy remove terraform-infra\n")
    .action(
      lazy(
        () => import("./remove.js"),
        (_opts, args) => ({ name: String(args[0]) }),
      ),
    );
  group
    .command("reset")
    .description(
      "back to the defaults: no rules; also replaces a policy.json the agent refuses (edited, or an older copy)",
    )
    .addHelpText("after", CONFIRM_NOTE + "Examples:\n  azkeep agent policy reset\n")
    .action(lazy(() => import("./reset.js")));
}
