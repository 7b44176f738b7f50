/**
 * Parsing the `az` command lines third-party tools run (reference §5): @azure/identity
 * (`execFile`, and the older shell string with a quoted subscription), azure-identity for
 * Python, Terraform's go-azure-sdk (`--scope …/.default`, `-o=json`), Pulumi and Go azidentity
 * (`/bin/sh -c "…"`). Only the commands the shim answers are parsed; everything else goes to a
 * real `az`. Deliberately without commander: the shim's start-up is its whole cost.
 */

export type ShimCommand = "version" | "account show" | "account list" | "account get-access-token";

export interface ShimGlobals {
  output: string | undefined;
  query: string | undefined;
  debug: boolean;
  verbose: boolean;
  onlyShowErrors: boolean;
}

export interface ParsedShimArgs {
  command: ShimCommand;
  options: Record<string, string | string[] | boolean>;
  globals: ShimGlobals;
}

export class ShimUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShimUsageError";
  }
}

interface FlagSpec {
  /** Canonical option name. */
  name: string;
  kind: "value" | "list" | "switch";
}

const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  "-o": { name: "output", kind: "value" },
  "--output": { name: "output", kind: "value" },
  "--query": { name: "query", kind: "value" },
  "--debug": { name: "debug", kind: "switch" },
  "--verbose": { name: "verbose", kind: "switch" },
  "--only-show-errors": { name: "onlyShowErrors", kind: "switch" },
};

const SUBSCRIPTION: Record<string, FlagSpec> = {
  "-s": { name: "subscription", kind: "value" },
  "--subscription": { name: "subscription", kind: "value" },
  "-n": { name: "subscription", kind: "value" },
  "--name": { name: "subscription", kind: "value" },
};

const COMMANDS: Record<ShimCommand, Record<string, FlagSpec>> = {
  version: {},
  "account show": { ...SUBSCRIPTION },
  "account list": {
    "--all": { name: "all", kind: "switch" },
    "--refresh": { name: "refresh", kind: "switch" },
  },
  "account get-access-token": {
    ...SUBSCRIPTION,
    "--resource": { name: "resource", kind: "value" },
    "--resource-type": { name: "resourceType", kind: "value" },
    "--scope": { name: "scope", kind: "list" },
    "-t": { name: "tenant", kind: "value" },
    "--tenant": { name: "tenant", kind: "value" },
  },
};

/** Flags `azkeep account get-access-token` has beyond az's (its fast path parses them too). */
const AZKEEP_EXTRAS: Partial<Record<ShimCommand, Record<string, FlagSpec>>> = {
  "account get-access-token": {
    "--claims-challenge": { name: "claimsChallenge", kind: "value" },
    "--force-refresh": { name: "forceRefresh", kind: "switch" },
    "--authority": { name: "authority", kind: "value" },
    "--client-id": { name: "clientId", kind: "value" },
  },
};

/** The command words of `argv` (before the first flag), e.g. `["account", "show"]`. */
function commandWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith("-")) break;
    words.push(a);
  }
  return words;
}

/**
 * Returns the parsed command when the shim answers it, or `undefined` when it must go to a
 * real `az`. Throws `ShimUsageError` for a known command with a bad flag (az: exit 2).
 */
export function parseShimArgs(
  argv: readonly string[],
  mode: "az" | "azkeep" = "az",
): ParsedShimArgs | undefined {
  const words = commandWords(argv);
  const key = words.join(" ");
  if (!(key in COMMANDS)) return undefined;
  const command = key as ShimCommand;
  const specs: Record<string, FlagSpec> = {
    ...GLOBAL_FLAGS,
    ...COMMANDS[command],
    ...(mode === "azkeep" ? AZKEEP_EXTRAS[command] : {}),
  };
  const options: Record<string, string | string[] | boolean> = {};
  const rest = argv.slice(words.length);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === "-h" || arg === "--help") return undefined; // help is the real az's job
    let flag = arg;
    let inline: string | undefined;
    const eq = /^(--?[A-Za-z][\w-]*)=(.*)$/s.exec(arg);
    if (eq) {
      flag = eq[1]!;
      inline = eq[2]!;
    }
    const spec = specs[flag];
    if (!spec) throw new ShimUsageError(`unrecognized arguments: ${arg}`);
    if (spec.kind === "switch") {
      if (inline !== undefined)
        throw new ShimUsageError(`argument ${flag}: ignored explicit argument '${inline}'`);
      options[spec.name] = true;
      continue;
    }
    const values: string[] = [];
    if (inline !== undefined) values.push(inline);
    else if (spec.kind === "value") {
      const v = rest[i + 1];
      if (v === undefined) throw new ShimUsageError(`argument ${flag}: expected one argument`);
      values.push(v);
      i++;
    }
    if (spec.kind === "list") {
      while (i + 1 < rest.length && !rest[i + 1]!.startsWith("-")) values.push(rest[++i]!);
      const prev = options[spec.name];
      options[spec.name] = [...(Array.isArray(prev) ? prev : []), ...values];
    } else {
      options[spec.name] = values[0]!;
    }
  }
  const globals: ShimGlobals = {
    output: typeof options.output === "string" ? options.output : undefined,
    query: typeof options.query === "string" ? options.query : undefined,
    debug: options.debug === true,
    verbose: options.verbose === true,
    onlyShowErrors: options.onlyShowErrors === true,
  };
  for (const g of ["output", "query", "debug", "verbose", "onlyShowErrors"]) delete options[g];
  return { command, options, globals };
}
