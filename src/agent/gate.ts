/**
 * The caller-aware release gate: the agent asks it before every release (an access token or
 * profile data). It identifies the caller from /proc, applies the sealed policy, asks the person
 * through pinentry when the policy says so, remembers an approval for the caller's terminal
 * session, and appends every decision to the MAC-chained log.
 *
 * Order of a decision (docs/policy.md):
 * 1. `--policy open`: allow (logged).
 * 2. policy.json changed outside azkeep, or not the one azkeep wrote last (its MAC is not the
 *    mark sealed in the store: an older copy put back): deny everything, say how to set it again.
 * 3. an `azkeep exec` run's scope allowlist: a request outside it is denied.
 * 4. the first matching rule: allow / deny / confirm.
 * 5. defaults: an unknown caller is denied; an approved terminal session is allowed (10 min
 *    idle, 12 h at most); a caller on a terminal is confirmed; a caller without one is denied.
 *
 * Changes of the policy (`azkeep agent policy add|remove|reset`) are never decided by a rule or
 * a session approval: the person allows each one on pinentry, which names the change and who
 * asks; only then does the vault write the file and seal its MAC.
 *
 * Threats: a same-uid program asking for tokens, signing the person out or in, or rewriting the
 * rules in its favour (it gets a prompt it cannot answer, on the
 * terminal the agent was started from, or a refusal); pid reuse (approvals are keyed by start
 * time); a self-described name (the prompt shows the kernel's exe path; argv is shown as given).
 */
import { fileSignature } from "../core/store/files.js";
import { readProcess, type ProcReader } from "../core/procfs.js";
import type { ReleaseDecision, ReleaseGate, ReleaseRequest } from "./release.js";
import { CallerCache, describeCaller, logCaller, type Caller } from "./caller.js";
import { ReleaseLog, maxBytesFromEnv, parseLogQuery, type LogEntry, type LogRequest } from "./log.js";
import { WorkerReleaseLog, type ReleaseLogHandle } from "./log-worker.js";
import {
  findPinentry,
  pinentryConfirm,
  pinentryOptions,
  type ConfirmOutcome,
  type Dialog,
} from "./pinentry.js";
import {
  NO_POLICY_MARK,
  PolicyChangeError,
  applyChange,
  describeRule,
  loadPolicy,
  matchRule,
  parseDuration,
  type Policy,
  type PolicyLoad,
  type ReleaseKeys,
  type RequestFacts,
  type Rule,
  type RuleChange,
} from "./policy.js";
import { AzkeepError } from "../core/errors.js";
import { UNLOCK_HINT, type PolicyChange, type PolicyView } from "./protocol.js";
import { join } from "node:path";
import { DEFAULT_DEFAULTS, POLICY_FILE } from "./policy.js";

type GateRequest = ReleaseRequest;
type GateDecision = ReleaseDecision;

export type ConfirmFn = (dialog: Dialog, timeoutSec: number) => Promise<ConfirmOutcome>;

export interface PolicyGateOptions {
  configDir: string;
  /** `open`: any process of the uid (ssh-agent's behaviour), still logged. */
  mode: "default" | "open";
  /** The terminal the agent was started or unlocked from: where pinentry asks. */
  promptTty?: string | undefined;
  /** The agent's environment, for a desktop pinentry (DISPLAY, WAYLAND_DISPLAY, DBUS_…). */
  env?: Record<string, string | undefined>;
  now?: () => number;
  reader?: ProcReader;
  /**
   * The release log's own thread (`dist/agent/log-thread.js`): records are made and written
   * there, off the thread that answers. Without it, in this thread (tests).
   */
  logThread?: string | undefined;
  /** Asks the person; by default a pinentry on `promptTty` or the desktop. */
  confirm?: ConfirmFn;
}

const GRAPH_V1 = /^https:\/\/graph\.microsoft\.com\/?$/i;

/** Audience of a resource or scope: `https://x/.default` → `https://x`, lower-case, no trailing `/`. */
export function audienceOf(s: string): string {
  let a = s.trim();
  const i = a.lastIndexOf("/");
  if (/^[a-z]+:\/\//i.test(a) && i > a.indexOf("//") + 1) {
    const last = a.slice(i + 1);
    if (last === ".default" || /^[A-Za-z.]+$/.test(last)) a = a.slice(0, i);
  }
  return a.replace(/\/+$/, "").toLowerCase();
}

const RESOURCE_TYPE_AUDIENCE: Record<string, string> = {
  arm: "https://management.azure.com",
  "ms-graph": "https://graph.microsoft.com",
  "aad-graph": "https://graph.windows.net",
  batch: "https://batch.core.windows.net",
  "data-lake": "https://datalake.azure.net",
  "media-services": "https://rest.media.azure.net",
  "oss-rdbms": "https://ossrdbms-aad.database.windows.net",
};

export function requestFacts(req: GateRequest): RequestFacts {
  const audiences: string[] = [];
  if (req.resource) audiences.push(audienceOf(req.resource));
  for (const s of req.scopes ?? []) audiences.push(audienceOf(s));
  if (!audiences.length && req.resourceType && RESOURCE_TYPE_AUDIENCE[req.resourceType])
    audiences.push(RESOURCE_TYPE_AUDIENCE[req.resourceType]!);
  if (!audiences.length && req.kind === "token") audiences.push("https://management.azure.com");
  return {
    kind: req.kind === "policy" ? "write" : req.kind,
    audiences: [...new Set(audiences)],
    tenant: req.tenant,
    subscription: req.subscription,
  };
}

function logRequest(req: GateRequest): LogRequest {
  return {
    kind: req.kind,
    op: req.op,
    resource: req.resource,
    scopes: req.scopes,
    resourceType: req.resourceType,
    tenant: req.tenant,
    subscription: req.subscription,
    ...(req.write ? { write: req.write } : {}),
    ...(req.user ? { user: req.user } : {}),
  };
}

/** What a request asks for, in words: "a token for https://…", "to sign out every account". */
function wanted(
  req: GateRequest,
  facts: RequestFacts,
  who: string,
): { what: string; asks: string; refused: string } {
  if (req.kind === "write") {
    const what =
      req.write === "signout"
        ? `to sign out ${req.user ?? "every account"}`
        : req.write === "signin"
          ? `to add a sign-in${req.user ? ` of ${req.user}` : ""}${req.tenant ? ` (tenant ${req.tenant})` : ""}`
          : req.write === "set-default"
            ? `to make subscription ${req.subscription ?? "?"} the default`
            : `to change the token store (${req.write ?? "?"})`;
    return {
      what,
      asks: `A program asks the azkeep agent\n${what}:`,
      refused: `did not let ${who} ${what.slice(3)}`,
    };
  }
  const what = [
    req.kind === "token" ? `a token for ${facts.audiences.join(", ")}` : "your account and subscription data",
    req.tenant ? `tenant ${req.tenant}` : undefined,
    req.subscription ? `subscription ${req.subscription}` : undefined,
  ]
    .filter(Boolean)
    .join(", ");
  return {
    what,
    asks: `A program asks the azkeep agent for\n${what}:`,
    refused: `did not release ${what} to ${who}`,
  };
}

/** A change in words, for the prompt and the log: the rule and what it does. */
function changeText(change: RuleChange, base: Policy | undefined): string {
  switch (change.kind) {
    case "add":
      return `add rule '${change.rule.name}'${change.before !== undefined ? ` before '${change.before}'` : " (last)"}:\n  ${describeRule(change.rule)}`;
    case "remove": {
      const old = base?.rules.find((r) => r.name === change.name);
      return `remove rule '${change.name}'${old ? `, which says:\n  ${describeRule(old)}` : ""}`;
    }
    case "reset": {
      const names = base?.rules.map((r) => `'${r.name}'`) ?? [];
      const what = !base
        ? ", replacing the policy in force"
        : names.length
          ? `: remove ${names.length === 1 ? "the rule" : `all ${names.length} rules`} ${names.join(", ")}`
          : " (no rules)";
      return `reset to the defaults${what};\n  terminal sessions are asked once, callers with no terminal get nothing`;
    }
  }
}

function fmtDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}

interface Approval {
  /** Epoch ms after which it is gone. */
  until: number;
  idleMs: number;
  lastUsed: number;
  rule: string;
}

/**
 * The MAC of the one policy file the agent accepts, kept inside the seal, and the vault's calls
 * that record it and write a changed policy. Unset only until the first policy file is verified
 * (trust on first sight); `NO_POLICY_MARK` once the person confirmed there is none. A file whose
 * MAC is not the mark — edited, or an older copy azkeep wrote — is refused; a missing file while
 * a MAC is marked is a removal, which the person confirms before the defaults apply.
 */
export interface SealedPolicyMark {
  mac?: string;
  mark?: (mac: string) => Promise<void>;
  write?: (policy: Policy) => Promise<string>;
}

/** How a policy file as loaded stands against the sealed mark. */
type Judged =
  | { state: "ok"; load: Extract<PolicyLoad, { state: "ok" | "default" }>; firstSight?: boolean }
  | { state: "tampered"; load: Extract<PolicyLoad, { state: "tampered" }> }
  /** No file, but the seal names one: removed outside azkeep (the person may confirm the defaults). */
  | { state: "removed"; load: Extract<PolicyLoad, { state: "default" }> };

/** Refusals kept while locked, waiting for the log key; beyond that they are not kept. */
const MAX_PENDING = 1000;

/** Why a pinentry confirmation did not allow something, in the words the refusal shows. */
function refusalWords(outcome: Exclude<ConfirmOutcome, { answer: "allow" }>, timeoutSec: number): string {
  return outcome.answer === "cancel"
    ? "you denied it"
    : outcome.answer === "timeout"
      ? `nobody answered within ${timeoutSec} s`
      : `the prompt failed (${outcome.detail})`;
}

export class PolicyGate {
  private keys: ReleaseKeys | undefined;
  private log: ReleaseLogHandle | undefined;
  /** The flush of the log dropped at the last lock. */
  private closing: Promise<void> = Promise.resolve();
  private policyCache: { sig: string; load: PolicyLoad } | undefined;
  /** The policy MAC the seal holds and how to change it (from the vault at unlock). */
  private seen: SealedPolicyMark | undefined;
  private pending: LogEntry[] = [];
  private approvals = new Map<string, Approval>();
  private readonly callers: CallerCache;
  private prompting: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private promptTty: string | undefined;

  constructor(private readonly o: PolicyGateOptions) {
    this.now = o.now ?? Date.now;
    this.promptTty = o.promptTty;
    this.callers = new CallerCache(o.reader, this.now);
  }

  /** Called when the store is unlocked (the vault's derived keys) and with undefined at lock. */
  setKeys(keys: ReleaseKeys | undefined, seen?: SealedPolicyMark): void {
    this.keys = keys;
    this.seen = seen;
    this.policyCache = undefined;
    if (!keys) {
      // Locked: the records made so far are written now (the log's key is gone after this).
      if (this.log) this.closing = this.log.close ? this.log.close() : this.log.flush();
      this.log = undefined;
      this.approvals.clear();
      return;
    }
    const maxBytes = maxBytesFromEnv(this.o.env ?? {});
    const options = maxBytes ? { maxBytes } : {};
    this.log = this.o.logThread
      ? new WorkerReleaseLog(this.o.logThread, this.o.configDir, keys.log, this.now, options, this.closing)
      : ReleaseLog.open(this.o.configDir, keys.log, this.now, options);
    // Refusals made while locked (no log key in the front then) are written now, with their time.
    for (const e of this.pending.splice(0)) this.log.append(e);
  }

  /**
   * Logs a refusal made without asking the policy (the agent is locked). Locked, the front holds
   * no log key, so the record waits in memory (bounded) and is chained in at the next unlock.
   */
  refused(req: GateRequest, rule: string, reason: string): void {
    const caller = this.callers.identify(req.peer.pid, req.run);
    this.record(caller, req, { allow: false, rule, reason }, this.now());
  }

  /** One release-log record; without the log key (locked) it waits in memory, bounded. */
  private record(
    caller: Caller,
    req: GateRequest,
    d: GateDecision,
    at?: number,
    extra?: Partial<LogRequest>,
  ): void {
    const entry: LogEntry = {
      caller: logCaller(caller),
      request: { ...logRequest(req), ...extra },
      decision: d.allow ? "allow" : "deny",
      rule: d.rule ?? "none",
      ...(d.reason ? { reason: d.reason } : {}),
      ...(at !== undefined ? { at } : {}),
    };
    if (this.log) this.log.append(entry);
    else if (at !== undefined && this.pending.length < MAX_PENDING) this.pending.push(entry);
  }

  /** The terminal pinentry asks on (the one `agent start`/`unlock` ran in). */
  setPromptTerminal(tty: string | undefined): void {
    if (tty) this.promptTty = tty;
  }

  get releaseLog(): ReleaseLogHandle | undefined {
    return this.log;
  }

  /** Resolves when every record made so far is on disk (the agent stops after it). */
  async flushLog(): Promise<void> {
    await this.closing;
    await this.log?.flush();
  }

  connected(pid: number): void {
    // Read now, while the caller's request is on its way; `decide` re-checks the cached caller
    // (start time, session, exe, cwd, argv) rather than reading the whole ancestry again.
    if (this.keys) this.callers.identify(pid, undefined);
  }

  /** Forgets every approval (`agent lock`, a policy change). */
  forgetApprovals(): void {
    this.approvals.clear();
  }

  private policy(): PolicyLoad {
    if (!this.keys) return { state: "tampered", message: "the agent is locked" };
    const path = join(this.o.configDir, POLICY_FILE);
    const sig = fileSignature(path) ?? "missing";
    if (this.policyCache?.sig !== sig) {
      this.policyCache = { sig, load: loadPolicy(this.o.configDir, this.keys.policy) };
      this.approvals.clear(); // rules changed: approvals made under the old ones lapse
    }
    return this.policyCache.load;
  }

  async decide(req: GateRequest): Promise<GateDecision> {
    const caller = this.callers.identify(req.peer.pid, req.run);
    const d = await this.decideFor(caller, req);
    this.record(caller, req, d);
    return d;
  }

  private async decideFor(caller: Caller, req: GateRequest): Promise<GateDecision> {
    if (this.o.mode === "open") return { allow: true, rule: "open" };
    const load = await this.checkedPolicy();
    if (load.state === "tampered")
      return {
        allow: false,
        rule: "policy-tampered",
        reason: `The agent's release policy is not trusted: ${load.message}. Nothing is released until it is restored: ${load.next ?? "put back the policy.json azkeep wrote last, or run `azkeep agent policy reset` and confirm it on the agent's pinentry"}.`,
      };
    const policy = load.policy;
    const facts = requestFacts(req);
    const who = caller.info.exe ? `${caller.info.exe} (pid ${caller.pid})` : `pid ${caller.pid}`;

    if (req.run?.allowScopes) {
      const allowed = new Set(req.run.allowScopes.map(audienceOf));
      const outside = facts.audiences.filter(
        (a) => !allowed.has(a) && !(GRAPH_V1.test(a) && allowed.has("https://graph.microsoft.com")),
      );
      if (outside.length)
        return {
          allow: false,
          rule: "run-scopes",
          reason: `azkeep exec run ${req.run.id} does not allow ${outside.join(", ")}; start it with \`--scope ${outside[0]}\` to allow it.`,
        };
    }

    const rule = matchRule(policy, caller.facts, facts);
    if (rule?.action === "allow") return { allow: true, rule: rule.name };
    if (rule?.action === "deny")
      return {
        allow: false,
        rule: rule.name,
        reason:
          req.kind === "write"
            ? `The agent's release policy does not let ${who} ${wanted(req, facts, who).what.slice(3)} (rule '${rule.name}').`
            : `The agent's release policy denies ${facts.audiences.join(", ") || req.kind} to ${who} (rule '${rule.name}').`,
      };

    if (!caller.facts.known)
      return {
        allow: false,
        rule: "unknown-caller",
        reason: `The agent cannot tell which program asks (pid ${caller.pid}), so it releases nothing to it. A caller it can read from /proc is needed.`,
      };

    const idleMs = parseDuration(policy.defaults.sessionIdle) ?? 600_000;
    const maxMs = rule?.remember
      ? (parseDuration(rule.remember) ?? 0)
      : (parseDuration(policy.defaults.sessionMax) ?? 43_200_000);
    const approvalKey = this.approvalKey(caller, rule);
    if (approvalKey && this.approved(approvalKey))
      return { allow: true, rule: rule ? `${rule.name} (approved)` : "session-approved" };

    if (!rule && !caller.facts.tty)
      return {
        allow: false,
        rule: "no-terminal",
        reason: `${who} has no terminal (a background job, service or cron), and the agent ${req.kind === "write" ? "changes the token store for" : "releases nothing to"} such callers by default. Run it from a terminal (the agent asks you once), or, where every program of your uid may have tokens (CI, a headless machine), restart the agent with \`azkeep agent start --policy open\`.`,
      };

    // Confirm: one prompt at a time; a session approved while this one waited needs none.
    const answer = this.prompting.then(async () => {
      if (approvalKey && this.approved(approvalKey))
        return { allow: true, rule: rule ? `${rule.name} (approved)` : "session-approved" };
      return this.ask(caller, req, facts, rule, approvalKey, idleMs, maxMs, who);
    });
    this.prompting = answer.catch(() => {});
    return answer;
  }

  /**
   * The policy file as verified, checked against the MAC the seal holds: a verified file is
   * recorded there (first sight, or a new file azkeep wrote); a missing file after one was seen
   * is a removal, which the person confirms before the defaults apply.
   */
  private async checkedPolicy(): Promise<PolicyLoad> {
    const j = this.judge();
    if (j.state === "ok") {
      if (j.firstSight && j.load.state === "ok") await this.recordMark(j.load.mac);
      return j.load;
    }
    if (j.state === "tampered") return j.load;
    const answer = this.prompting.then(() => this.confirmRemoval(j.load));
    this.prompting = answer.catch(() => {});
    return answer;
  }

  /** The policy file against the seal's mark, without asking anyone. */
  private judge(): Judged {
    const load = this.policy();
    if (load.state === "tampered") return { state: "tampered", load };
    const mark = this.seen?.mac;
    // No mark support (tests, embedders) or nothing verified yet: the first policy seen is it.
    if (!this.seen || mark === undefined) return { state: "ok", load, firstSight: load.state === "ok" };
    if (load.state === "default")
      return mark === NO_POLICY_MARK ? { state: "ok", load } : { state: "removed", load };
    if (load.mac === mark) return { state: "ok", load };
    return {
      state: "tampered",
      load: {
        state: "tampered",
        message: `${join(this.o.configDir, POLICY_FILE)} is not the policy azkeep wrote last (its MAC is valid, but not the one the seal records: an older copy was put back, or a copy from elsewhere)`,
        next: "put back the policy.json azkeep wrote last, or run `azkeep agent policy reset` and confirm it on the agent's pinentry",
      },
    };
  }

  private async recordMark(mac: string): Promise<void> {
    const seen = this.seen;
    if (!seen) return;
    try {
      await seen.mark?.(mac);
      seen.mac = mac;
    } catch {
      /* not recorded (the vault went away): recorded at the next request */
    }
  }

  private async confirmRemoval(load: PolicyLoad): Promise<PolicyLoad> {
    const seen = this.seen;
    if (!seen?.mac) return load; // confirmed while this request waited
    const file = join(this.o.configDir, POLICY_FILE);
    const refused = (why: string): PolicyLoad => ({
      state: "tampered",
      message: `${file} was removed outside azkeep, and ${why}`,
      next: "put back the policy.json azkeep wrote, or run the command again from a terminal and confirm the defaults",
    });
    const confirm = this.o.confirm ?? this.pinentryConfirm();
    if (!confirm)
      return refused("the agent has no pinentry or terminal to ask whether the defaults may apply");
    const outcome = await confirm(
      {
        title: "azkeep: the release policy was removed",
        description: [
          "The azkeep agent's release policy file was removed:",
          file,
          "",
          "Without it the defaults apply: terminal sessions are asked once,",
          "callers with no terminal get nothing, and its rules are gone.",
          "",
          "Return to the defaults?",
        ].join("\n"),
        ok: "_Use the defaults",
        cancel: "_Keep refusing",
      },
      DEFAULT_DEFAULTS.promptTimeout,
    );
    if (outcome.answer !== "allow")
      return refused(
        outcome.answer === "cancel"
          ? "you kept refusing"
          : outcome.answer === "timeout"
            ? "nobody confirmed the defaults in time"
            : `the prompt failed (${outcome.detail})`,
      );
    try {
      // "No file" is recorded, not forgotten: an older policy.json put back later is refused.
      await seen.mark?.(NO_POLICY_MARK);
    } catch (e) {
      return refused(`the confirmation could not be recorded (${(e as Error).message})`);
    }
    seen.mac = NO_POLICY_MARK;
    this.approvals.clear();
    return load;
  }

  /** `azkeep agent policy show`: the policy in force, verified against its MAC and the seal; asks nobody. */
  showPolicy(): PolicyView {
    if (!this.keys)
      throw new AzkeepError("store_unavailable", "The azkeep agent is locked.", { hint: UNLOCK_HINT });
    const j = this.judge();
    if (j.state === "ok") return this.view(j.load);
    const file = join(this.o.configDir, POLICY_FILE);
    throw new AzkeepError(
      "store_tampered",
      `The agent's release policy is not trusted: ${j.state === "tampered" ? j.load.message : `${file} was removed outside azkeep`}. The agent releases nothing until it is restored.`,
      {
        hint: "Put back the policy.json azkeep wrote last, or run `azkeep agent policy reset` and confirm it on the agent's pinentry.",
      },
    );
  }

  /**
   * `azkeep agent policy add|remove|reset`: the change is shown on pinentry (what it does, who
   * asks) and made only on *Allow*: the vault writes policy.json and seals its MAC as the mark.
   * Never decided by a rule or a session approval (a rule could otherwise let a program rewrite
   * the rules). Every outcome but a change that cannot be made (`PolicyChangeError`) is logged.
   */
  async changePolicy(req: GateRequest, change: RuleChange): Promise<PolicyView> {
    const caller = this.callers.identify(req.peer.pid, undefined);
    const answer = this.prompting.then(() => this.changeFor(caller, change));
    this.prompting = answer.catch(() => {});
    const r = await answer;
    this.record(caller, req, r.decision, undefined, r.logged);
    if (!r.decision.allow || !r.view)
      throw new AzkeepError("denied", r.decision.reason ?? "The release policy was not changed.", {
        hint: "`azkeep agent log` shows the agent's decisions; docs/policy.md how the policy is changed.",
      });
    return r.view;
  }

  private async changeFor(
    caller: Caller,
    change: RuleChange,
  ): Promise<{ decision: GateDecision; view?: PolicyView; logged: Partial<LogRequest> }> {
    const seen = this.seen;
    if (!this.keys || !seen?.write)
      throw new AzkeepError("store_unavailable", "The azkeep agent is locked.", { hint: UNLOCK_HINT });
    const j = this.judge();
    const untrusted =
      j.state === "ok"
        ? undefined
        : j.state === "tampered"
          ? j.load.message
          : `${join(this.o.configDir, POLICY_FILE)} was removed outside azkeep`;
    const base = j.state === "ok" ? j.load.policy : undefined;
    let next: Policy;
    try {
      next = applyChange(base ?? { version: 1, defaults: { ...DEFAULT_DEFAULTS }, rules: [] }, change);
    } catch (e) {
      if (!(e instanceof PolicyChangeError)) throw e;
      throw new AzkeepError(e.notFound ? "not_found" : "usage", e.message, {
        hint: "`azkeep agent policy show` lists the rules.",
      });
    }
    const changed = changeText(change, base);
    const logged: Partial<LogRequest> = {
      change: changed,
      ...(change.kind === "add" ? { rule: change.rule } : {}),
    };
    const deny = (rule: string, reason: string) => ({ decision: { allow: false, rule, reason }, logged });
    if (untrusted && change.kind !== "reset")
      return deny(
        "policy-tampered",
        `The agent's release policy is not trusted (${untrusted}), so nothing is changed on top of it. Run \`azkeep agent policy reset\` and confirm it on the agent's pinentry, or put back the policy.json azkeep wrote last.`,
      );
    if (!caller.facts.known)
      return deny(
        "policy-change (unknown caller)",
        `The agent cannot tell which program asks (pid ${caller.pid}), so it does not ask you to change the release policy for it.`,
      );
    const confirm = this.o.confirm ?? this.pinentryConfirm();
    if (!confirm)
      return deny(
        "policy-change (no prompt)",
        `The release policy changes only after you allow it on the agent's pinentry, and the agent has ${findPinentry({}) ? "no terminal to ask on (run `azkeep agent unlock` or `azkeep agent start` in the terminal it should ask on)" : "no pinentry program (`apt-get install pinentry-curses`)"}. Nothing was changed.`,
      );
    const description = [
      "A program asks to change the azkeep agent's release policy:",
      "",
      ...changed.split("\n"),
      ...(untrusted ? ["", `(The policy in force is not trusted: ${untrusted}.)`] : []),
      "",
      "Asked by:",
      ...describeCaller(caller),
      "",
      "Allow it only if you asked for this change yourself.",
    ].join("\n");
    const timeoutSec = this.load()?.defaults.promptTimeout ?? DEFAULT_DEFAULTS.promptTimeout;
    const outcome = await confirm(
      { title: "azkeep: change the release policy?", description, ok: "_Allow", cancel: "_Deny" },
      timeoutSec,
    );
    if (outcome.answer !== "allow") {
      const why = refusalWords(outcome, timeoutSec);
      return deny(
        `policy-change (${outcome.answer === "cancel" ? "denied" : outcome.answer})`,
        `The release policy was not changed: ${why}.`,
      );
    }
    try {
      seen.mac = await seen.write(next);
    } catch (e) {
      return deny(
        "policy-change (not written)",
        `The release policy was not changed: the agent could not write it (${(e as Error).message}).`,
      );
    }
    this.policyCache = undefined; // read again: approvals made under the old rules lapse
    return {
      decision: { allow: true, rule: "policy-change (confirmed)" },
      view: this.view({ state: "ok", policy: next, mac: seen.mac }, changed),
      logged,
    };
  }

  private view(load: Extract<PolicyLoad, { state: "ok" | "default" }>, changed?: string): PolicyView {
    return {
      source: load.state === "ok" ? "file" : "defaults",
      file: join(this.o.configDir, POLICY_FILE),
      defaults: load.policy.defaults,
      rules: load.policy.rules,
      ...(changed ? { changed } : {}),
    };
  }

  /** Approvals are per terminal session; a confirm rule for callers without one approves that process only. */
  private approvalKey(caller: Caller, rule: Rule | undefined): string | undefined {
    const base = caller.sessionKey
      ? `session:${caller.sessionKey}`
      : caller.processKey
        ? `process:${caller.processKey}`
        : undefined;
    if (!base) return undefined;
    return rule ? `${base}|rule:${rule.name}` : base;
  }

  private approved(key: string): boolean {
    const a = this.approvals.get(key);
    if (!a) return false;
    const t = this.now();
    if (t >= a.until || t - a.lastUsed >= a.idleMs) {
      this.approvals.delete(key);
      return false;
    }
    a.lastUsed = t;
    return true;
  }

  private async ask(
    caller: Caller,
    req: GateRequest,
    facts: RequestFacts,
    rule: Rule | undefined,
    approvalKey: string | undefined,
    idleMs: number,
    maxMs: number,
    who: string,
  ): Promise<GateDecision> {
    const ruleName = rule?.name ?? "confirm-terminal";
    const scope = caller.sessionKey
      ? `this terminal session (${caller.info.tty}, session ${caller.info.sid})`
      : `this process only (pid ${caller.pid})`;
    const w = wanted(req, facts, who);
    const description = [
      w.asks,
      "",
      ...describeCaller(caller),
      "",
      `Allow it for ${scope}: ${fmtDuration(idleMs)} idle, at most ${fmtDuration(maxMs)}.`,
    ].join("\n");
    const dialog: Dialog = {
      title: "azkeep: allow this program?",
      description,
      ok: "_Allow",
      cancel: "_Deny",
    };
    const timeoutSec = this.load()?.defaults.promptTimeout ?? 60;
    const confirm = this.o.confirm ?? this.pinentryConfirm();
    if (!confirm) {
      const pin = findPinentry({});
      const missing = pin
        ? "no terminal to ask on (start the agent from a terminal: `azkeep agent start`)"
        : "no pinentry program (`apt-get install pinentry-curses`)";
      return {
        allow: false,
        rule: `${ruleName} (no prompt)`,
        reason: `${who} needs your confirmation, but the agent has ${missing}. Or, where every program of your uid may have tokens, restart the agent with \`azkeep agent start --policy open\`.`,
      };
    }
    const outcome = await confirm(dialog, timeoutSec);
    if (outcome.answer === "allow") {
      if (approvalKey) {
        const t = this.now();
        this.approvals.set(approvalKey, { until: t + maxMs, idleMs, lastUsed: t, rule: ruleName });
      }
      return { allow: true, rule: `${ruleName} (confirmed)` };
    }
    const why = refusalWords(outcome, timeoutSec);
    return {
      allow: false,
      rule: `${ruleName} (${outcome.answer === "cancel" ? "denied" : outcome.answer})`,
      reason: `The agent ${w.refused}: ${why}. Run the command again to be asked again.`,
    };
  }

  private load(): { defaults: { promptTimeout: number; pinentry?: string } } | undefined {
    const l = this.policyCache?.load;
    return l && l.state !== "tampered" ? l.policy : undefined;
  }

  /** A pinentry on the desktop or on the agent's terminal; undefined when neither exists. */
  private pinentryConfirm(): ConfirmFn | undefined {
    const env = this.o.env ?? {};
    const desktop = Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
    // AZKEEP_PINENTRY picks one of the system's pinentries by name (never a path elsewhere).
    const named =
      env.AZKEEP_PINENTRY && /^pinentry[a-z0-9-]*$/.test(env.AZKEEP_PINENTRY)
        ? `/usr/bin/${env.AZKEEP_PINENTRY}`
        : undefined;
    const preferred = this.load()?.defaults.pinentry ?? named;
    const pin = findPinentry({ desktop, ...(preferred ? { preferred } : {}) });
    if (!pin) return undefined;
    if (pin.kind === "tty" && !this.promptTty) return undefined;
    const tty = this.promptTty;
    return (dialog, timeoutSec) =>
      pinentryConfirm(
        pinentryOptions(pin.program, env, { ttyname: pin.kind === "tty" ? tty : undefined, timeoutSec }),
        dialog,
      );
  }
}

/** The gate the agent's front uses (release.ts's `loadGate`). */
export function releaseGate(o: PolicyGateOptions): ReleaseGate & { gate: PolicyGate } {
  const gate = new PolicyGate(o);
  return {
    gate,
    decide: (req) => gate.decide(req),
    refused: (req, rule, reason) => gate.refused(req, rule, reason),
    unlocked(keys, vault) {
      gate.setKeys(
        keys
          ? { log: Buffer.from(keys.log, "base64"), policy: Buffer.from(keys.policy, "base64") }
          : undefined,
        keys
          ? {
              ...(keys.policyMac ? { mac: keys.policyMac } : {}),
              ...(vault ? { mark: (mac) => vault.mark(mac), write: (p) => vault.write(p) } : {}),
            }
          : undefined,
      );
    },
    async policy(req, change: PolicyChange) {
      if (change.kind === "show") return gate.showPolicy();
      return gate.changePolicy(req, change);
    },
    locked() {
      gate.setKeys(undefined);
    },
    flushLog: () => gate.flushLog(),
    connected: (pid) => gate.connected(pid),
    promptFrom(pid) {
      const tty = readProcess(pid, o.reader).tty;
      if (tty?.startsWith("/dev/")) gate.setPromptTerminal(tty);
    },
    async readLog(msg) {
      const log = gate.releaseLog;
      if (!log)
        throw new AzkeepError(
          "store_unavailable",
          "The agent is locked: its release log cannot be checked.",
          {
            hint: UNLOCK_HINT,
          },
        );
      // One page (a log of several files does not fit in one frame); the client asks for the next.
      const { kinds: _kinds, ...page } = await log.readPage(parseLogQuery(msg));
      return { ...page, ...(log.problem ? { previous: log.problem } : {}) };
    },
  };
}
