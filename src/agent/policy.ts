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
import { rename, writeFile } from "node:fs/promises";
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
  /** `token` or `profile`. */
  kind?: "token" | "profile";
}

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
  kind: "token" | "profile";
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
      for (const k of Object.keys(r.caller ?? {}))
        if (!CALLER_KEYS.has(k)) errs.push(`${at}.caller.${k} is not a caller condition`);
      for (const k of Object.keys(r.request ?? {}))
        if (!REQUEST_KEYS.has(k)) errs.push(`${at}.request.${k} is not a request condition`);
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

function policyMac(key: Uint8Array, policy: Policy): string {
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

/** Writes `policy.json` (MACed; temp file → rename). The caller has the person's confirmation. */
export async function savePolicy(dir: string, key: Uint8Array, policy: Policy): Promise<void> {
  const errs = validatePolicy(policy);
  if (errs.length) throw new Error(`not a valid policy: ${errs.join("; ")}`);
  const path = join(dir, POLICY_FILE);
  const body = { version: 1, defaults: policy.defaults, rules: policy.rules, mac: policyMac(key, policy) };
  await writeFile(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}
