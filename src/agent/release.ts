/**
 * The release gate: the one hook the agent calls before it releases anything (an access token
 * or profile data) to a client or writes the store for one. The agent's front process calls
 * `decide` for every `token`, `account`, `accounts` and `write` request, with the peer's credentials read from the socket
 * (SO_PEERCRED); a denial becomes a protocol error the client prints as one `ERROR:` line
 * (exit 1), with the gate's `reason` as the message.
 *
 * The default gate (`--policy ask`) is the caller-aware release policy (`gate.ts`: who asks,
 * sealed rules, pinentry confirmation, the MAC-chained log); `--policy open` releases to every
 * process of the uid (ssh-agent's behaviour) and still logs every decision. `openGate` (no log)
 * is for tests and embedders only.
 */
import type { Policy } from "./policy.js";
import type { PolicyChange, PolicyView } from "./protocol.js";

export interface ReleaseRequest {
  /** Who is connected, from the kernel (SO_PEERCRED); `pid` is 0 when it could not be read. */
  peer: { pid: number; uid: number; gid: number };
  /**
   * `token`: an access token; `profile`: account/subscription data; `write`: a store write
   * (sign-in, sign-out, default subscription); `policy`: a change of the release policy (never
   * decided by a rule: the person confirms each one).
   */
  kind: "token" | "profile" | "write" | "policy";
  /** The v1 resource asked for, when given. */
  resource?: string;
  /** The v2 scopes asked for, when given. */
  scopes?: string[];
  tenant?: string;
  subscription?: string;
  /** Set when the request comes from an `azkeep exec` endpoint on behalf of a child. */
  run?: { id: string; childPid: number; allowScopes?: string[] };
  /** `resourceType` (`arm`, `ms-graph`, …) when the client named one instead of a resource. */
  resourceType?: string;
  /** The protocol op: `token`, `account`, `accounts`, `write`, `policy add`, … */
  op?: string;
  /** For `write`: which (`signin`, `signout`, `set-default`). */
  write?: string;
  /** For `write`: the user signed in or out (a name, never a secret). */
  user?: string;
}

/** What the gate needs of the vault to change the policy (set at unlock). */
export interface PolicyVault {
  /** Records in the seal the MAC of the policy the gate verified (`NO_POLICY_MARK`: none). */
  mark(mac: string): Promise<void>;
  /** Writes policy.json with its MAC and seals the MAC as the mark; returns the MAC. */
  write(policy: Policy): Promise<string>;
}

/** What the vault sends at unlock: the MAC keys, and the policy MAC it last recorded. */
export interface ReleaseKeysMessage {
  log: string;
  policy: string;
  policyMac?: string;
}

export interface ReleaseDecision {
  allow: boolean;
  /** Shown to the client when denied (one line, names the next step). */
  reason?: string;
  /** Which rule decided, for logs and `--debug`. */
  rule?: string;
}

export interface ReleaseGate {
  decide(req: ReleaseRequest): Promise<ReleaseDecision>;
  /**
   * The store was unlocked: the release keys the vault derived (base64), and the vault's calls
   * that record the policy's MAC in the seal and write a changed policy.
   */
  unlocked?(keys: ReleaseKeysMessage | undefined, vault?: PolicyVault): void;
  /**
   * `azkeep agent policy …`: shows the verified policy, or changes it once the person allowed
   * it on pinentry (logged either way). Throws `denied` when not allowed.
   */
  policy?(req: ReleaseRequest, change: PolicyChange): Promise<PolicyView>;
  /** The store was locked: keys and approvals are dropped. */
  locked?(): void;
  /** `agent start`/`unlock` ran from this pid: ask the person on its terminal. */
  promptFrom?(pid: number): void;
  /**
   * A connection from `pid` was accepted: who it is may be read now, while its request is still
   * on the way, instead of after it arrived (the caller cache re-checks it at the decision).
   */
  connected?(pid: number): void;
  /** A request refused before the gate was asked (the agent is locked): logged all the same. */
  refused?(req: ReleaseRequest, rule: string, reason: string): void;
  /** `azkeep agent log`: one page of records (`LogPage`) and whether the chain verifies; `msg` is the request. */
  readLog?(msg: Record<string, unknown>): Promise<unknown>;
  /** Resolves when every release-log record made so far is on disk (before the agent exits). */
  flushLog?(): Promise<void>;
}

/** Releases everything: the default, and `azkeep agent start --policy open`. */
export const openGate: ReleaseGate = {
  decide: () => Promise.resolve({ allow: true, rule: "open" }),
};

/** The gates `azkeep agent start --policy NAME` knows; the first is the default. */
export const GATE_NAMES = ["ask", "open"] as const;

export interface GateSetup {
  configDir: string;
  env: Record<string, string | undefined>;
  /** The terminal `agent start` ran in (where pinentry asks). */
  promptTty?: string | undefined;
  /** The release log's own thread's entry (`dist/agent/log-thread.js`). */
  logThread?: string | undefined;
}

/** The gate for `--policy NAME`; undefined when the name is unknown. */
export async function loadGate(name: string, setup?: GateSetup): Promise<ReleaseGate | undefined> {
  if (name !== "ask" && name !== "open") return undefined;
  if (!setup) return name === "open" ? openGate : undefined;
  const { releaseGate } = await import("./gate.js");
  return releaseGate({
    configDir: setup.configDir,
    mode: name === "open" ? "open" : "default",
    promptTty: setup.promptTty,
    env: setup.env,
    logThread: setup.logThread,
  });
}
