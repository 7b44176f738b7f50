/**
 * `azkeep agent policy add --name N --action allow|confirm|deny [conditions…] [--before NAME]`:
 * parses the flags into a rule (`ruleFromFlags`, tested apart) and asks the agent to add it;
 * the agent shows it on its pinentry and adds it only when the person allows it.
 */
import {
  REQUEST_KINDS,
  parseDuration,
  type Action,
  type RequestKind,
  type Rule,
} from "../../../../agent/policy.js";
import { UsageError } from "../../../../core/errors.js";
import type { CommandRun } from "../../../command.js";
import { policyRequest } from "./common.js";

export const ACTIONS: readonly Action[] = ["allow", "confirm", "deny"];

export interface AddFlags {
  name?: string;
  action?: string;
  exe?: string;
  cwd?: string;
  ancestor?: string;
  argv?: string;
  tty?: string;
  unit?: string;
  terminal?: string;
  container?: string;
  run?: string;
  audience?: string;
  tenant?: string;
  subscription?: string;
  kind?: string;
  remember?: string;
  before?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function bool(flag: string, v: string): boolean {
  if (v === "true") return true;
  if (v === "false") return false;
  throw new UsageError(`argument ${flag}: invalid choice: '${v}' (choose from true, false)`);
}

/** `https://graph.microsoft.com/.default` and `…/` name the audience `https://graph.microsoft.com`. */
function audience(v: string): string {
  return v
    .trim()
    .replace(/\/\.default$/i, "")
    .replace(/\/+$/, "")
    .toLowerCase();
}

/** The rule the flags describe; a `UsageError` (exit 2) names the flag that is wrong. */
export function ruleFromFlags(f: AddFlags): { rule: Rule; before?: string } {
  if (!f.name) throw new UsageError("the following arguments are required: --name");
  if (!NAME.test(f.name))
    throw new UsageError(
      `argument --name: '${f.name}' is not a rule name (letters, digits, '.', '_', '-'; at most 64)`,
    );
  if (!f.action) throw new UsageError("the following arguments are required: --action");
  if (!(ACTIONS as readonly string[]).includes(f.action))
    throw new UsageError(
      `argument --action: invalid choice: '${f.action}' (choose from ${ACTIONS.join(", ")})`,
    );
  const action = f.action as Action;
  const empty = Object.entries(f).find(([, v]) => typeof v === "string" && v.trim() === "");
  if (empty) throw new UsageError(`argument --${empty[0]}: the value is empty`);

  const caller: Rule["caller"] = {};
  if (f.exe !== undefined) {
    // A bare name matches the executable's file name; a path (glob) its real path.
    if (!f.exe.includes("/")) caller.name = f.exe;
    else if (f.exe.startsWith("/") || f.exe.startsWith("*")) caller.exe = f.exe;
    else
      throw new UsageError(
        `argument --exe: '${f.exe}' is neither a name (terraform) nor an absolute path (/usr/bin/terraform)`,
      );
  }
  if (f.cwd !== undefined) {
    if (!f.cwd.startsWith("/") && !f.cwd.startsWith("*"))
      throw new UsageError(`argument --cwd: '${f.cwd}' is not an absolute folder (/home/me/infra/**)`);
    caller.cwd = f.cwd;
  }
  if (f.ancestor !== undefined) caller.ancestor = f.ancestor;
  if (f.argv !== undefined) caller.argv = f.argv;
  if (f.tty !== undefined) {
    if (!/^\/dev\/\S+$/.test(f.tty))
      throw new UsageError(`argument --tty: '${f.tty}' is not a terminal (/dev/pts/3; \`tty\` prints yours)`);
    caller.tty = f.tty;
  }
  if (f.unit !== undefined) caller.unit = f.unit;
  if (f.terminal !== undefined) caller.terminal = bool("--terminal", f.terminal);
  if (f.container !== undefined) caller.container = bool("--container", f.container);
  if (f.run !== undefined) caller.run = f.run === "true" ? true : f.run === "false" ? false : f.run;

  const request: Rule["request"] = {};
  if (f.audience !== undefined) request.audience = audience(f.audience);
  if (f.tenant !== undefined) request.tenant = f.tenant;
  if (f.subscription !== undefined) request.subscription = f.subscription;
  if (f.kind !== undefined) {
    if (!(REQUEST_KINDS as readonly string[]).includes(f.kind))
      throw new UsageError(
        `argument --kind: invalid choice: '${f.kind}' (choose from ${REQUEST_KINDS.join(", ")})`,
      );
    request.kind = f.kind as RequestKind;
  }

  if (f.remember !== undefined) {
    if (action !== "confirm")
      throw new UsageError(
        "argument --remember: only a confirm rule remembers an approval (--action confirm)",
      );
    if (parseDuration(f.remember) === undefined)
      throw new UsageError(`argument --remember: '${f.remember}' is not a duration (e.g. 30m, 1h, 8h)`);
  }
  const hasCaller = Object.keys(caller).length > 0;
  if (action === "allow" && !hasCaller && Object.keys(request).length === 0)
    throw new UsageError("an allow rule with no condition lets every program of your uid have everything", {
      hint: "Name the caller (--exe, --cwd, --ancestor, --tty, …) or the request (--audience, --kind, …); for every program, start the agent with `azkeep agent start --policy open`.",
    });
  if (
    action === "allow" &&
    caller.argv !== undefined &&
    caller.exe === undefined &&
    caller.name === undefined
  )
    throw new UsageError(
      "argument --argv: a program says its own arguments; an allow rule on them needs --exe as well",
      { hint: 'For example: --exe /usr/bin/node --argv "* */bin/azkeep.js rest *".' },
    );
  const rule: Rule = {
    name: f.name,
    ...(hasCaller ? { caller } : {}),
    ...(Object.keys(request).length ? { request } : {}),
    action,
    ...(f.remember !== undefined ? { remember: f.remember } : {}),
  };
  return { rule, ...(f.before !== undefined ? { before: f.before } : {}) };
}

export const run: CommandRun<AddFlags> = (flags, io) => {
  const { rule, before } = ruleFromFlags(flags);
  return policyRequest(io, { kind: "add", rule, ...(before !== undefined ? { before } : {}) });
};
