/**
 * The release gate: the one hook the agent calls before it releases anything (an access token
 * or profile data) to a client. The agent's front process calls `decide` for every `token`,
 * `account` and `accounts` request, with the peer's credentials read from the socket
 * (SO_PEERCRED); a denial becomes a protocol error the client prints as one `ERROR:` line
 * (exit 1), with the gate's `reason` as the message.
 *
 * `openGate` allows everything (the default, and `--policy open`). The caller-aware release
 * policy (sealed rules, pinentry confirmation, decision log) implements this same interface.
 */

export interface ReleaseRequest {
  /** Who is connected, from the kernel (SO_PEERCRED); `pid` is 0 when it could not be read. */
  peer: { pid: number; uid: number; gid: number };
  /** `token`: an access token; `profile`: account/subscription data. */
  kind: "token" | "profile";
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
  /** The protocol op: `token`, `account` or `accounts`. */
  op?: string;
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
}

/** Releases everything: the default, and `azkeep agent start --policy open`. */
export const openGate: ReleaseGate = {
  decide: () => Promise.resolve({ allow: true, rule: "open" }),
};

/** The gates `azkeep agent start --policy NAME` knows. */
export const GATE_NAMES = ["open"] as const;

/** The gate for `--policy NAME`; undefined when the name is unknown. */
export async function loadGate(name: string): Promise<ReleaseGate | undefined> {
  if (name === "open") return openGate;
  return undefined;
}
