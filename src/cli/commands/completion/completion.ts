/**
 * `azkeep completion bash|zsh|fish`: a completion script generated from the command tree
 * (commands, flags, and the values of flags with choices such as `-o`), so it never drifts from
 * the commands. zsh runs the bash script through `bashcompinit`.
 */
import type { CommandRun } from "../../command.js";

export interface CompletionOption {
  long: string | undefined;
  short: string | undefined;
  takesValue: boolean;
  choices: string[] | undefined;
}

export interface CompletionNode {
  path: string[];
  options: CompletionOption[];
  /** Choices of the positional arguments (e.g. `completion <shell>`). */
  values: string[];
  commands: CompletionNode[];
}

function walk(n: CompletionNode, out: CompletionNode[] = []): CompletionNode[] {
  out.push(n);
  for (const c of n.commands) walk(c, out);
  return out;
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A command's flags: its own and the global ones (but `--version`, which only the root has). */
function optionsOf(n: CompletionNode, root: CompletionNode): CompletionOption[] {
  return n === root ? n.options : [...n.options, ...root.options.filter((o) => o.long !== "--version")];
}

function flags(o: CompletionOption): string[] {
  return [o.short, o.long].filter((f): f is string => Boolean(f));
}

export function bashScript(root: CompletionNode): string {
  const nodes = walk(root);
  const paths = nodes.filter((n) => n.path.length > 0).map((n) => sq(n.path.join(" ")));
  // Flags that take a value: their choices, or files.
  const valued = new Map<string, string[] | undefined>();
  for (const n of nodes)
    for (const o of n.options) if (o.takesValue) for (const f of flags(o)) valued.set(f, o.choices);
  const valueCases = [...valued]
    .map(([f, choices]) =>
      choices
        ? `    ${f}) COMPREPLY=($(compgen -W ${sq(choices.join(" "))} -- "$cur")); return ;;`
        : `    ${f}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`,
    )
    .join("\n");
  const wordCases = nodes
    .map((n) => {
      const words = [
        ...n.commands.map((c) => c.path.at(-1)!),
        ...n.values,
        ...optionsOf(n, root).flatMap((o) => (o.long ? [o.long] : [])),
      ];
      return `    ${sq(n.path.join(" "))}) words=${sq(words.join(" "))} ;;`;
    })
    .join("\n");
  return `# azkeep completion for bash (azkeep completion bash): source it, or save it as
# ~/.local/share/bash-completion/completions/azkeep
_azkeep() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" path="" w i words=""
  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case "\${path:+$path }$w" in
      ${paths.join("|")}) path="\${path:+$path }$w" ;;
    esac
  done
  case "$prev" in
${valueCases}
  esac
  case "$path" in
${wordCases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _azkeep azkeep
`;
}

export function zshScript(root: CompletionNode): string {
  return `#compdef azkeep
# azkeep completion for zsh (azkeep completion zsh): save it as _azkeep in a folder of $fpath,
# or source it after compinit. It is the bash script, run by zsh's bashcompinit.
autoload -U +X bashcompinit && bashcompinit
${bashScript(root)}`;
}

export function fishScript(root: CompletionNode): string {
  const nodes = walk(root);
  const paths = nodes.filter((n) => n.path.length > 0).map((n) => sq(n.path.join(" ")));
  const lines: string[] = [
    "# azkeep completion for fish (azkeep completion fish): save it as",
    "# ~/.config/fish/completions/azkeep.fish",
    "function __azkeep_path",
    "    set -l path",
    "    for w in (commandline -opc)[2..-1]",
    "        string match -q -- '-*' $w; and continue",
    "        set -l cand (string join ' ' $path $w)",
    `        contains -- $cand ${paths.join(" ")}; and set path $path $w`,
    "    end",
    "    set -l joined (string join ' ' $path)",
    '    test "$joined" = "$argv[1]"',
    "end",
    "complete -c azkeep -f",
  ];
  for (const n of nodes) {
    const cond = `-n ${sq(`__azkeep_path ${sq(n.path.join(" "))}`)}`;
    const words = [...n.commands.map((c) => c.path.at(-1)!), ...n.values];
    if (words.length) lines.push(`complete -c azkeep ${cond} -a ${sq(words.join(" "))}`);
    for (const o of optionsOf(n, root)) {
      const parts = ["complete -c azkeep", cond];
      if (o.long) parts.push(`-l ${o.long.replace(/^--/, "")}`);
      if (o.short) parts.push(`-s ${o.short.replace(/^-/, "")}`);
      if (o.takesValue) parts.push(o.choices ? `-x -a ${sq(o.choices.join(" "))}` : "-r -F");
      lines.push(parts.join(" "));
    }
  }
  return lines.join("\n") + "\n";
}

export const run: CommandRun<{ shell: "bash" | "zsh" | "fish"; tree: CompletionNode }> = async (o, io) => {
  const script =
    o.shell === "bash" ? bashScript(o.tree) : o.shell === "zsh" ? zshScript(o.tree) : fishScript(o.tree);
  io.stdout(script);
  return {};
};
