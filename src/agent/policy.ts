/**
 * The release policy: rules that match a caller (executable path or name, an ancestor, the
 * folder it runs in, its terminal session, an `azkeep exec` run, a systemd unit or container)
 * and a request (audience/scope, tenant, subscription) and decide `allow`, `confirm` or
 * `deny`; the first rule that matches decides, the defaults decide the rest.
 *
 * The file (`policy.json` in the config folder) is plain JSON a person can read, with a MAC
 * under a key only the unlocked store gives (HKDF from a secret inside `tokens.sealed`). An edit
 * made outside azkeep does not verify, and the agent then releases nothing until the policy is
 * set again through azkeep, which asks the person through pinentry first.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const POLICY_FILE = "policy.json";

export type Action = "allow" | "confirm" | "deny";

export interface CallerMatch {
  /** The executable's real path; a glob (`*` within a folder, `**` across folders). */
  exe?: string;
  /** The executable's file name (`terraform`). */
  name?: string;
  /** Some ancestor's executable path or name (glob), e.g. `/usr/bin/code` or `sshd`. */
  ancestor?: string;
  /** The folder the caller runs in (glob), e.g. `/home/me/infra/**`. */
  cwd?: string;
  /** The caller's argv joined by spaces (glob, `*` matches anything). Self-reported: pair it with `exe`. */
  argv?: string;
  /** `true`: has a controlling terminal; `false`: has none (cron, services, background jobs). */
  terminal?: boolean;
  /** A terminal path (`/dev/pts/3`). */
  tty?: string;
  /** The systemd unit from the cgroup (glob), e.g. `cron.service`, `app-*.scope`. */
  unit?: string;
  /** `true`: only inside a container; `false`: only outside. */
  container?: boolean;
  /** `true`: the request comes through an `azkeep exec` run; a string: that run id. */
  run?: boolean | string;
}

export interface RequestMatch {
  /** The token's audience (resource or scope without `/.default`); glob. `*graph.microsoft.com*`. */
  audience?: string;
  tenant?: string;
  subscription?: string;
  /** `token`, `profile` (account and subscription data) or `write` (sign-in, sign-out, default subscription). */
  kind?: RequestKind;
}

/** What a request asks of the agent. */
export type RequestKind = "token" | "profile" | "write";

export interface Rule {
  /** Shown in logs and prompts; unique. */
  name: string;
  caller?: CallerMatch;
  request?: RequestMatch;
  action: Action;
  /** For `confirm`: how long an approval lasts (`1h`); default: the session lifetimes. */
  remember?: string;
}

export interface Defaults {
  /** An approved terminal session lapses after this long unused. */
  sessionIdle: string;
  /** …and after this long in any case. */
  sessionMax: string;
  /** Seconds the person has to answer a prompt. */
  promptTimeout: number;
  /** A pinentry program (absolute path) instead of the first one found. */
  pinentry?: string;
}

export interface Policy {
  version: 1;
  defaults: Defaults;
  rules: Rule[];
}

export const DEFAULT_DEFAULTS: Defaults = { sessionIdle: "10m", sessionMax: "12h", promptTimeout: 60 };

export function defaultPolicy(): Policy {
  return { version: 1, defaults: { ...DEFAULT_DEFAULTS }, rules: [] };
}

/** `90s`, `10m`, `1h30m`, `12h`, `2d` → milliseconds; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  if (!m || text.trim() === "") return undefined;
  const [d, h, min, s] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number];
  return (((d * 24 + h) * 60 + min) * 60 + s) * 1000;
}

/** Glob to RegExp: `**` anything, `*` anything but `/` (or anything, with `slash`), `?` one. */
export function globToRegExp(glob: string, slash = false): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        re += ".*";
        i++;
      } else re += slash ? ".*" : "[^/]*";
    } else if (c === "?") re += slash ? "." : "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "s");
}

const globCache = new Map<string, RegExp>();
function glob(pattern: string, value: string | undefined, slash = false): boolean {
  if (value === undefined) return false;
  const k = `${slash ? 1 : 0}${pattern}`;
  let re = globCache.get(k);
  if (!re) {
    re = globToRegExp(pattern, slash);
    globCache.set(k, re);
  }
  return re.test(value);
}

/** What rules see of a caller (built by `caller.ts` from /proc; unknown fields undefined). */
export interface CallerFacts {
  known: boolean;
  exe: string | undefined;
  argv: string[] | undefined;
  cwd: string | undefined;
  tty: string | undefined;
  unit: string | undefined;
  container: string | undefined;
  /** Executable paths of the ancestors, nearest first. */
  ancestors: (string | undefined)[];
  run: { id: string } | undefined;
}

export interface RequestFacts {
  kind: RequestKind;
  /** Audiences asked for (resource or scope without `/.default`), lower-case; empty = the default (ARM). */
  audiences: string[];
  tenant: string | undefined;
  subscription: string | undefined;
}

function baseName(p: string | undefined): string | undefined {
  return p
    ?.split("/")
    .pop()
    ?.replace(/ \(deleted\)$/, "");
}

function matchCaller(m: CallerMatch | undefined, c: CallerFacts): boolean {
  if (!m) return true;
  if (m.exe !== undefined && !glob(m.exe, c.exe)) return false;
  if (m.name !== undefined && !glob(m.name, baseName(c.exe))) return false;
  if (m.ancestor !== undefined) {
    const a = m.ancestor;
    const hit = c.ancestors.some((p) => (a.includes("/") ? glob(a, p) : glob(a, baseName(p))));
    if (!hit) return false;
  }
  if (m.cwd !== undefined && !glob(m.cwd, c.cwd)) return false;
  if (m.argv !== undefined && !glob(m.argv, c.argv?.join(" "), true)) return false;
  if (m.terminal !== undefined && (c.tty !== undefined) !== m.terminal) return false;
  if (m.tty !== undefined && c.tty !== m.tty) return false;
  if (m.unit !== undefined && !glob(m.unit, c.unit)) return false;
  if (m.container !== undefined && (c.container !== undefined) !== m.container) return false;
  if (m.run !== undefined) {
    if (m.run === true && !c.run) return false;
    if (m.run === false && c.run) return false;
    if (typeof m.run === "string" && c.run?.id !== m.run) return false;
  }
  return true;
}

function matchRequest(m: RequestMatch | undefined, r: RequestFacts, action: Action): boolean {
  if (!m) return true;
  if (m.kind !== undefined && m.kind !== r.kind) return false;
  if (m.audience !== undefined) {
    // A write (sign-in, sign-out, default subscription) has no audience: a rule about tokens
    // for an audience must not let a program sign the person out.
    if (r.kind === "write") return false;
    const aud = r.audiences.length ? r.audiences : ["https://management.azure.com"];
    // allow/confirm: every audience asked for must match (a request for two cannot ride on one
    // that is allowed); deny: any one does.
    const hit = (a: string) => glob(m.audience!.toLowerCase(), a, true);
    if (action === "deny" ? !aud.some(hit) : !aud.every(hit)) return false;
  }
  if (m.tenant !== undefined && (r.tenant ?? "").toLowerCase() !== m.tenant.toLowerCase()) return false;
  if (m.subscription !== undefined && (r.subscription ?? "").toLowerCase() !== m.subscription.toLowerCase())
    return false;
  return true;
}

/** The first rule that matches, or undefined. A rule needs a known caller unless it only matches requests. */
export function matchRule(policy: Policy, caller: CallerFacts, request: RequestFacts): Rule | undefined {
  for (const rule of policy.rules) {
    // A caller that could not be identified matches no caller condition (never trusted).
    if (rule.caller && Object.keys(rule.caller).length > 0 && !caller.known) continue;
    if (matchCaller(rule.caller, caller) && matchRequest(rule.request, request, rule.action)) return rule;
  }
  return undefined;
}

const CALLER_KEYS = new Set([
  "exe",
  "name",
  "ancestor",
  "cwd",
  "argv",
  "terminal",
  "tty",
  "unit",
  "container",
  "run",
]);
const REQUEST_KEYS = new Set(["audience", "tenant", "subscription", "kind"]);
const BOOLEAN_KEYS = new Set(["terminal", "container"]);
export const REQUEST_KINDS: readonly RequestKind[] = ["token", "profile", "write"];

/** Checks a parsed policy; returns a list of problems (empty = valid). */
export function validatePolicy(value: unknown): string[] {
  const errs: string[] = [];
  const p = value as Policy;
  if (!p || typeof p !== "object") return ["the policy is not an object"];
  if (p.version !== 1) errs.push("version must be 1");
  const d = p.defaults as Partial<Defaults> | undefined;
  if (!d || typeof d !== "object") errs.push("defaults is missing");
  else {
    if (typeof d.sessionIdle !== "string" || parseDuration(d.sessionIdle) === undefined)
      errs.push("defaults.sessionIdle must be a duration such as 10m");
    if (typeof d.sessionMax !== "string" || parseDuration(d.sessionMax) === undefined)
      errs.push("defaults.sessionMax must be a duration such as 12h");
    if (typeof d.promptTimeout !== "number" || !(d.promptTimeout > 0 && d.promptTimeout <= 600))
      errs.push("defaults.promptTimeout must be 1–600 seconds");
    if (d.pinentry !== undefined && (typeof d.pinentry !== "string" || !d.pinentry.startsWith("/")))
      errs.push("defaults.pinentry must be an absolute path");
  }
  if (!Array.isArray(p.rules)) errs.push("rules must be a list");
  else {
    const names = new Set<string>();
    p.rules.forEach((r, i) => {
      const at = `rules[${i}]`;
      if (!r || typeof r !== "object") return errs.push(`${at} is not an object`);
      if (typeof r.name !== "string" || !r.name) errs.push(`${at}.name is missing`);
      else if (names.has(r.name)) errs.push(`${at}.name '${r.name}' is used twice`);
      else names.add(r.name);
      if (!["allow", "confirm", "deny"].includes(r.action))
        errs.push(`${at}.action must be allow, confirm or deny`);
      if (
        r.remember !== undefined &&
        (typeof r.remember !== "string" || parseDuration(r.remember) === undefined)
      )
        errs.push(`${at}.remember must be a duration such as 1h`);
      if (r.caller !== undefined && (typeof r.caller !== "object" || r.caller === null))
        errs.push(`${at}.caller must be an object`);
      if (r.request !== undefined && (typeof r.request !== "object" || r.request === null))
        errs.push(`${at}.request must be an object`);
      for (const [k, v] of Object.entries(r.caller ?? {})) {
        if (!CALLER_KEYS.has(k)) errs.push(`${at}.caller.${k} is not a caller condition`);
        else if (
          BOOLEAN_KEYS.has(k)
            ? typeof v !== "boolean"
            : k === "run"
              ? typeof v !== "boolean" && typeof v !== "string"
              : typeof v !== "string" || !v
        )
          errs.push(
            `${at}.caller.${k} must be ${BOOLEAN_KEYS.has(k) ? "true or false" : "a non-empty string"}`,
          );
      }
      for (const [k, v] of Object.entries(r.request ?? {})) {
        if (!REQUEST_KEYS.has(k)) errs.push(`${at}.request.${k} is not a request condition`);
        else if (typeof v !== "string" || !v) errs.push(`${at}.request.${k} must be a non-empty string`);
        else if (k === "kind" && !(REQUEST_KINDS as readonly string[]).includes(v))
          errs.push(`${at}.request.kind must be ${REQUEST_KINDS.join(", ")}`);
      }
    });
  }
  return errs;
}

/** The keys the release policy uses, from the release secret kept inside `tokens.sealed`. */
export interface ReleaseKeys {
  log: Buffer;
  policy: Buffer;
}

export function deriveReleaseKeys(root: Uint8Array): ReleaseKeys {
  const k = (info: string) => Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), info, 32));
  return { log: k("azkeep release-log v1"), policy: k("azkeep release-policy v1") };
}

/**
 * The sealed mark that says "no policy file": the person confirmed its removal (or none was
 * ever verified and then one was removed). A policy.json found while this is the mark is one
 * azkeep did not write last (an older copy put back) and is refused.
 */
export const NO_POLICY_MARK = "none";

export function policyMac(key: Uint8Array, policy: Policy): string {
  return createHmac("sha256", key)
    .update(
      `azkeep policy v1\n${JSON.stringify({ version: policy.version, defaults: policy.defaults, rules: policy.rules })}`,
    )
    .digest("base64url");
}

export type PolicyLoad =
  | { state: "ok"; policy: Policy; mac: string }
  /** No policy.json: the defaults apply. */
  | { state: "default"; policy: Policy }
  /** The file does not verify: nothing may be released until it is set again through azkeep. */
  | { state: "tampered"; message: string; next?: string };

/** Reads and verifies `policy.json` in `dir`. */
export function loadPolicy(dir: string, key: Uint8Array): PolicyLoad {
  const path = join(dir, POLICY_FILE);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { state: "default", policy: defaultPolicy() };
    return { state: "tampered", message: `${path} cannot be read: ${(e as Error).message}` };
  }
  let parsed: Policy & { mac?: string };
  try {
    parsed = JSON.parse(text) as Policy & { mac?: string };
  } catch {
    return { state: "tampered", message: `${path} is not valid JSON (changed outside azkeep)` };
  }
  const mac = typeof parsed?.mac === "string" ? parsed.mac : "";
  const errs = validatePolicy(parsed);
  if (errs.length) return { state: "tampered", message: `${path} is not a valid policy: ${errs[0]}` };
  const want = Buffer.from(policyMac(key, parsed));
  const got = Buffer.from(mac);
  if (want.length !== got.length || !timingSafeEqual(want, got))
    return { state: "tampered", message: `${path} was changed outside azkeep (its MAC does not match)` };
  return { state: "ok", policy: { version: 1, defaults: parsed.defaults, rules: parsed.rules }, mac };
}

/**
 * Writes `policy.json` (MACed; temp file → rename) and returns its MAC. The caller has the
 * person's confirmation. `commit` runs between the temp file and the rename (the agent's vault
 * seals the new MAC there): when it fails, the old file stays and the temp file goes.
 */
export async function savePolicy(
  dir: string,
  key: Uint8Array,
  policy: Policy,
  commit?: (mac: string) => Promise<void>,
): Promise<string> {
  const errs = validatePolicy(policy);
  if (errs.length) throw new Error(`not a valid policy: ${errs.join("; ")}`);
  const path = join(dir, POLICY_FILE);
  const mac = policyMac(key, policy);
  const body = { version: 1, defaults: policy.defaults, rules: policy.rules, mac };
  await writeFile(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  try {
    await commit?.(mac);
  } catch (e) {
    await rm(`${path}.tmp`, { force: true });
    throw e;
  }
  await rename(`${path}.tmp`, path);
  return mac;
}

// ---------------------------------------------------------------------------------------------
// Changes (`azkeep agent policy add|remove|reset`) and how they are shown to the person

/** A change of the rules, as `agent policy` sends it (protocol.ts's `PolicyChange`, less `show`). */
export type RuleChange =
  { kind: "add"; rule: Rule; before?: string } | { kind: "remove"; name: string } | { kind: "reset" };

/** A change that cannot be made to this policy (a name used twice, a rule that is not there). */
export class PolicyChangeError extends Error {
  constructor(
    message: string,
    readonly notFound = false,
  ) {
    super(message);
    this.name = "PolicyChangeError";
  }
}

/** The policy after `change`; throws `PolicyChangeError` when it cannot be made. */
export function applyChange(policy: Policy, change: RuleChange): Policy {
  if (change.kind === "reset") return defaultPolicy();
  const rules = [...policy.rules];
  if (change.kind === "remove") {
    const i = rules.findIndex((r) => r.name === change.name);
    if (i < 0) throw new PolicyChangeError(`The release policy has no rule named '${change.name}'.`, true);
    rules.splice(i, 1);
  } else {
    if (rules.some((r) => r.name === change.rule.name))
      throw new PolicyChangeError(
        `The release policy has a rule named '${change.rule.name}' already; remove it first or pick another name.`,
      );
    let at = rules.length;
    if (change.before !== undefined) {
      at = rules.findIndex((r) => r.name === change.before);
      if (at < 0)
        throw new PolicyChangeError(
          `--before: the release policy has no rule named '${change.before}'.`,
          true,
        );
    }
    rules.splice(at, 0, change.rule);
  }
  const next: Policy = { version: 1, defaults: { ...policy.defaults }, rules };
  const errs = validatePolicy(next);
  if (errs.length) throw new PolicyChangeError(`The rule is not valid: ${errs.join("; ")}.`);
  return next;
}

function callerWords(c: CallerMatch | undefined): string[] {
  if (!c) return [];
  const w: string[] = [];
  if (c.exe !== undefined) w.push(`executable ${c.exe}`);
  if (c.name !== undefined) w.push(`executable named ${c.name}`);
  if (c.ancestor !== undefined) w.push(`started under ${c.ancestor}`);
  if (c.cwd !== undefined) w.push(`running in ${c.cwd}`);
  if (c.argv !== undefined) w.push(`arguments "${c.argv}" (as the program says)`);
  if (c.terminal !== undefined) w.push(c.terminal ? "on a terminal" : "with no terminal");
  if (c.tty !== undefined) w.push(`on terminal ${c.tty}`);
  if (c.unit !== undefined) w.push(`in systemd unit ${c.unit}`);
  if (c.container !== undefined) w.push(c.container ? "inside a container" : "outside containers");
  if (c.run !== undefined)
    w.push(
      c.run === true
        ? "through azkeep exec"
        : c.run === false
          ? "not through azkeep exec"
          : `through azkeep exec run ${c.run}`,
    );
  return w;
}

function requestWords(r: RequestMatch | undefined): string {
  const what =
    r?.kind === "token"
      ? "tokens"
      : r?.kind === "profile"
        ? "account data"
        : r?.kind === "write"
          ? "store writes (sign-in, sign-out, default subscription)"
          : r?.audience !== undefined
            ? "tokens"
            : "everything (tokens, account data, store writes)";
  const more = [
    r?.audience !== undefined ? `for ${r.audience}` : undefined,
    r?.tenant !== undefined ? `in tenant ${r.tenant}` : undefined,
    r?.subscription !== undefined ? `of subscription ${r.subscription}` : undefined,
  ].filter(Boolean);
  return [what, ...more].join(" ");
}

/**
 * What a rule does, in words a person checks before allowing it:
 * `allow tokens for https://management.azure.com to: executable /usr/bin/terraform, running in /home/me/infra/**`.
 */
export function describeRule(rule: Rule): string {
  const who = callerWords(rule.caller);
  const to = who.length ? `to: ${who.join(", ")}` : "to every program";
  const what = requestWords(rule.request);
  switch (rule.action) {
    case "allow":
      return `allow ${what} ${to}, without asking`;
    case "deny":
      return `deny ${what} ${to}`;
    case "confirm":
      return `ask you before releasing ${what} ${to}${rule.remember ? `; an approval lasts ${rule.remember}` : ""}`;
  }
}
