import { Argument, type Command } from "commander";
import type { RegisterGroup } from "../../command.js";
import { OUTPUT_FORMATS } from "../../output/format.js";
import type { CompletionNode, CompletionOption } from "./completion.js";

export const SHELLS = ["bash", "zsh", "fish"] as const;

/** The command tree as completion sees it: names, flags, which flags take a value, choices. */
function tree(cmd: Command, path: string[]): CompletionNode {
  const options: CompletionOption[] = cmd.options
    .filter((o) => !o.hidden)
    .map((o) => ({
      long: o.long,
      short: o.short,
      takesValue: o.required || o.optional,
      choices: o.long === "--output" ? [...OUTPUT_FORMATS] : (o.argChoices ?? undefined),
    }));
  return {
    path,
    options,
    values: cmd.registeredArguments.flatMap((a) => a.argChoices ?? []),
    commands: cmd.commands.filter((c) => c.name() !== "help").map((c) => tree(c, [...path, c.name()])),
  };
}

export const register: RegisterGroup = (program, lazy) => {
  program
    .command("completion")
    .summary("print a shell completion script (bash, zsh, fish)")
    .description("print a script that completes azkeep's commands, flags and flag values in your shell.")
    .addArgument(new Argument("<shell>", "the shell").choices(SHELLS))
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  source <(azkeep completion bash)                  # now, in this bash\n" +
        "  azkeep completion bash > ~/.local/share/bash-completion/completions/azkeep\n" +
        '  azkeep completion zsh > "${fpath[1]}/_azkeep"     # zsh (then compinit)\n' +
        "  azkeep completion fish > ~/.config/fish/completions/azkeep.fish\n",
    )
    .action(
      lazy(
        () => import("./completion.js"),
        (_opts, args, cmd) => {
          const root = cmd.parent!;
          // The global flags are the root's; every command accepts them.
          return { shell: args[0] as (typeof SHELLS)[number], tree: tree(root, []) };
        },
      ),
    );
};
