import type { RegisterGroup } from "../../command.js";
import { registerPolicy } from "./policy/index.js";

export const register: RegisterGroup = (program, lazy) => {
  const group = program
    .command("agent")
    .description(
      "the azkeep agent: one process per user holds the unlocked store; refresh tokens never leave it",
    );
  group
    .command("start")
    .description("start the agent in the background (nothing happens when one runs already)")
    .option("--idle <duration>", "lock after this long without use (e.g. 30m, 8h)")
    .option("--max <duration>", "lock this long after an unlock, whatever happens (e.g. 12h)")
    .option("--auto", "remember: any command that needs the store starts the agent (as gpg-agent)")
    .option("--no-auto", "forget --auto")
    .option("--agent-only", "remember: no process but the agent unseals the store")
    .option("--no-agent-only", "forget --agent-only: every azkeep process may open the store again")
    .option(
      "--policy <name>",
      "the release policy: ask (who asks decides; a person confirms; see docs/policy.md) or open (every process of your uid, logged)",
      "ask",
    )
    .option("--foreground", "run in this process (for a systemd user unit); logs go to stderr")
    .addHelpText(
      "after",
      "\nExamples:\n  azkeep agent start --idle 30m --max 12h\n  azkeep agent start --auto --agent-only\n" +
        "With the passphrase provider, the agent starts locked: run `azkeep agent unlock`.\n",
    )
    .action(
      lazy(
        () => import("./start.js"),
        (opts, _args, cmd) => ({
          ...(typeof opts.idle === "string" ? { idle: opts.idle } : {}),
          ...(typeof opts.max === "string" ? { max: opts.max } : {}),
          ...(cmd.getOptionValueSource("auto") === "cli" ? { auto: opts.auto === true } : {}),
          ...(cmd.getOptionValueSource("agentOnly") === "cli" ? { agentOnly: opts.agentOnly === true } : {}),
          policy: String(opts.policy),
          foreground: opts.foreground === true,
        }),
      ),
    );
  group
    .command("stop")
    .description("stop the agent (its vault ends; nothing unsaved is lost: every write is already sealed)")
    .action(lazy(() => import("./stop.js")));
  group
    .command("status")
    .description(
      "locked or not, since and until when, identities, key provider, socket, pid — never a secret",
    )
    .addHelpText("after", "\nExit code 0 when an agent runs (locked or not), 1 when none does.\n")
    .action(lazy(() => import("./status.js")));
  group
    .command("lock")
    .description("lock the agent: the process that held the unlocked store ends, its memory with it")
    .action(lazy(() => import("./lock.js")));
  group
    .command("log")
    .description(
      "the release log: every release and refusal, store write and policy change, MAC-chained (docs/policy.md)",
    )
    .option("--since <when>", "only records of the last DURATION (30m, 2h, 1d) or since a date")
    .option("--caller <who>", "only records of this executable (path or name) or pid")
    .addHelpText(
      "after",
      "\nExamples:\n  azkeep agent log --since 1h -o table\n  azkeep agent log --caller terraform\n" +
        "\nFiles (in the config folder), read oldest first as one MAC chain:\n" +
        "  release.log.3 … .1   rotated files (at 8 MiB; the newest 3 are kept)\n" +
        "  release.log          the current file\n" +
        "  release.log.head     its MACed head (the last record written)\n" +
        "With --verbose: how many records were checked, in which files, what was rotated away.\n",
    )
    .action(
      lazy(
        () => import("./log.js"),
        (opts) => ({
          ...(typeof opts.since === "string" ? { since: opts.since } : {}),
          ...(typeof opts.caller === "string" ? { caller: opts.caller } : {}),
        }),
      ),
    );
  group
    .command("unlock")
    .description(
      "unlock the agent (with the passphrase provider: asks for the passphrase through pinentry, else on the terminal)",
    )
    .action(lazy(() => import("./unlock.js")));
  registerPolicy(group, lazy);
};
