/**
 * The agent's wire protocol: the ONE module both the agent (`server.ts`) and its clients
 * (`client.ts`, and through it the fast lane, `rest`, the shim, `AzkeepCredential`, `exec`)
 * import, so the two sides cannot drift apart.
 *
 * Transport: a unix socket at `agentSocketPath()` (0600, in a 0700 runtime folder; the agent
 * also checks the peer's uid). Frames: one JSON object per line (`\n`-terminated UTF-8), each
 * at most `MAX_FRAME_BYTES`. A client sends a `hello` first (it may pipeline its request behind
 * it in the same write: one round trip); the agent answers every request, in order, with one
 * response frame carrying the request's `id`.
 *
 * Versioning: `PROTOCOL_VERSION` changes whenever a request or response changes incompatibly.
 * An agent answers a `hello` of another version with the error code `agent_version`, and a
 * client that sees it (or an agent's `hello` of another version) tells the person to restart
 * the agent (`azkeep agent stop && azkeep agent start`). Fields may be added without a bump;
 * both sides ignore fields they do not know.
 *
 * What crosses the socket: access tokens, profile data (accounts, subscriptions), the agent's
 * status — never a refresh token, client secret, certificate or store key. The one secret that
 * travels towards the agent is the store passphrase of `unlock`, and then only to the agent's
 * vault process (see `server.ts`).
 *
 * Example (what `azkeep account get-access-token` sends, one write, two lines):
 * ```
 * {"id":0,"op":"hello","version":1,"configDir":"/home/me/.config/azkeep"}
 * {"id":1,"op":"token","request":{"resourceType":"arm"}}
 * ```
 * and what it reads back:
 * ```
 * {"id":0,"ok":true,"result":{"version":1,"pid":4242,"azkeep":"0.1.0"}}
 * {"id":1,"ok":true,"result":{"accessToken":"eyJ…","tokenType":"Bearer","expiresOn":1767000000,"tenant":"…","subscription":"…","source":"cache"}}
 * ```
 * Keep this module free of imports beyond `node:path`: it is on the hot path of every client.
 */
import { join } from "node:path";
import type { Rule } from "./policy.js";

/** Bumped on every incompatible change of a request or response. */
export const PROTOCOL_VERSION = 1;

/**
 * Bumped when a request is added (a compatible change: `PROTOCOL_VERSION` stays). The agent
 * names its revision in `hello`, so a client can tell an agent too old for a request from a
 * refusal, and say to restart it.
 * - 1: `hello`, `token`, `account`, `accounts`, `status`, `lock`, `unlock`, `stop`, `log`,
 *   `cloud`, `write`.
 * - 2: `policy` (show, and change after the person confirms on the agent's pinentry); `write`
 *   requests go through the release gate (kind `write`).
 * - 3: `log` answers one page (`LogPage`, a `next` cursor to ask for the following one) of a
 *   log that rotates across files; the request may carry `page`, `since`, `caller`, `records`.
 */
export const PROTOCOL_REVISION = 3;

/** The longest frame either side accepts (a token response is ~3 KiB; a profile a few KiB). */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** A connection that has not sent a whole frame after this long is closed (slow clients). */
export const FRAME_TIMEOUT_MS = 10_000;

/** A connection with no request for this long is closed (clients connect per use); not while one is answered. */
export const IDLE_CONNECTION_MS = 60_000;

/** The environment variable that names the socket explicitly. */
export const SOCKET_ENV = "AZKEEP_AGENT_SOCK";

/** FNV-1a, 32 bits, as 8 hex digits: names the socket per config folder without node:crypto. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * Where the agent of `configDir` listens: `$AZKEEP_AGENT_SOCK`, else
 * `<runtimeDir>/agent-<hash of configDir>.sock` — one agent per user and config folder, found
 * by every shell, subprocess, IDE terminal and cron job without an environment variable.
 */
export function agentSocketPath(
  paths: { configDir: string; runtimeDir: string },
  env: Readonly<Record<string, string | undefined>>,
): string {
  return env[SOCKET_ENV] || join(paths.runtimeDir, `agent-${fnv1a(paths.configDir)}.sock`);
}

// ---------------------------------------------------------------------------------------------
// Requests

/** What a token is asked for: the fields of `azkeep account get-access-token`. */
export interface TokenQuery {
  /** v2 scopes (used as they are). */
  scopes?: string[];
  /** A v1 resource (`https://vault.azure.net`); its scope is `resource + "/.default"`. */
  resource?: string;
  /** `arm`, `ms-graph`, … (an endpoint of the account's cloud). */
  resourceType?: string;
  /** Subscription id or name; default: the default subscription. */
  subscription?: string;
  /** Tenant to get the token from; default: the account's. */
  tenant?: string;
  /** A claims challenge (JSON or base64 JSON): skips the cache. */
  claims?: string;
  /** `--force-refresh`: skips the cache and replaces the cached token. */
  forceRefresh?: boolean;
}

/** Who asks on behalf of an `azkeep exec` run (given by the exec endpoint, checked by the release gate). */
export interface RunInfo {
  /** The run's id (random, per `azkeep exec`). */
  id: string;
  /** The pid of the child whose request this is. */
  childPid: number;
  /** The run's scope allowlist, when it has one. */
  allowScopes?: string[];
}

export type AgentRequest =
  | { id: number; op: "hello"; version: number; configDir?: string; azkeep?: string }
  | { id: number; op: "token"; request: TokenQuery; run?: RunInfo }
  /** The account (subscription entry, as `az account show`) of `subscription`, or the default. */
  | { id: number; op: "account"; subscription?: string; run?: RunInfo }
  /** Every subscription of the active cloud (as `az account list`; `all`: every cloud's). */
  | { id: number; op: "accounts"; all?: boolean; run?: RunInfo }
  | { id: number; op: "status" }
  | { id: number; op: "lock" }
  /**
   * Opens the store. With the passphrase provider the agent answers `{ needPassphrase: true }`
   * and the client's NEXT frame is `{ "passphrase": "…" }`, read by the vault process only.
   */
  | { id: number; op: "unlock" }
  | { id: number; op: "stop" }
  /** The release log, verified by the agent (it holds the MAC key), one page at a time. */
  | ({ id: number; op: "log" } & LogPageQuery)
  /** The active cloud (config.json checked against the seal): where `login` signs in. */
  | { id: number; op: "cloud" }
  /** Store writes (`login`, `logout`, `account set`): see `WriteOp`. Decided by the release gate (kind `write`). */
  | { id: number; op: "write"; write: WriteOp }
  /** The release policy: read it, or change it (revision 2): see `PolicyChange`. */
  | { id: number; op: "policy"; change: PolicyChange };

export type AgentOp = AgentRequest["op"];

/**
 * A store write a client asks the agent to make (agent-only mode: the client cannot unseal the
 * store). The agent applies it under the store lock and seals the result (atomic write).
 * Secrets here travel towards the agent only (a fresh sign-in's refresh token).
 */
export type WriteOp =
  /**
   * A finished sign-in (`core/signin.ts`'s `SignInRecord`: entries, the new credential, access
   * tokens), merged by az's rules and bound to the agent's verified cloud in the agent.
   */
  | { kind: "signin"; record: unknown }
  /** `logout` / `account clear`: drop these users (or all when `usernames` is absent). */
  | { kind: "signout"; usernames?: string[] }
  /** `account set`: make this subscription (id or name) the default. */
  | { kind: "set-default"; subscription: string; username?: string };

/**
 * A change of the sealed release policy (`azkeep agent policy …`). `show` reads it; the others
 * are made only after the person allows them on the agent's pinentry (never on the asking
 * program's word): the agent's vault then writes policy.json with its MAC and seals the MAC as
 * the one policy it accepts.
 */
export type PolicyChange =
  | { kind: "show" }
  /** Adds `rule` at the end of the rules, or before the rule named `before`. */
  | { kind: "add"; rule: Rule; before?: string }
  | { kind: "remove"; name: string }
  /** Back to the defaults (no rules, the default lifetimes). */
  | { kind: "reset" };

/**
 * Where a read of the release log goes on: the log file (by its number, which a rotation does
 * not change, unlike its name), the byte offset and line there, and the last record checked
 * (the next one must follow it). Opaque to clients: they pass back what the agent gave.
 */
export interface LogCursor {
  file: number;
  offset: number;
  line: number;
  last?: { seq: number; mac: string };
}

/** A `log` request: the page after `page` (the first without), records filtered. */
export interface LogPageQuery {
  page?: LogCursor;
  /** Epoch ms: only records at or after it (older rotated files are not read). */
  since?: number;
  /** Only records of this executable (path or name) or pid. */
  caller?: string;
  /** `false`: check only, send no records (`doctor`). */
  records?: boolean;
}

/** The answer to `log`: one page, oldest records first. */
export interface LogPage<R = unknown> {
  /** No problem found on this page. */
  ok: boolean;
  records: R[];
  /** Each problem found on this page, in words naming the file and record. */
  problems: string[];
  /** What is normal but worth saying (records rotated away, files skipped by `since`). */
  notes: string[];
  /** The files this page read. */
  files: string[];
  /** Records checked on this page (filtered or not). */
  checked: number;
  /** Where the next page starts; absent on the last page. */
  next?: LogCursor;
  /** A log found broken when the agent unlocked, kept aside. */
  previous?: string;
}

/** The answer to `policy`: the policy in force, verified, and for a change what changed. */
export interface PolicyView {
  /** `file`: policy.json, verified against its MAC and the seal; `defaults`: no file. */
  source: "file" | "defaults";
  file: string;
  defaults: { sessionIdle: string; sessionMax: string; promptTimeout: number; pinentry?: string };
  rules: Rule[];
  /** For a change: what was changed, in one line. */
  changed?: string;
}

// ---------------------------------------------------------------------------------------------
// Responses

export interface AgentErrorBody {
  /** An `ErrorCode` of `core/errors.ts`, or `agent_version`. */
  code: string;
  message: string;
  /** The next step for a person (e.g. "Run `azkeep agent unlock`."). */
  hint?: string;
}

export type AgentResponse =
  { id: number; ok: true; result: unknown } | { id: number; ok: false; error: AgentErrorBody };

export interface HelloResult {
  version: number;
  /** `PROTOCOL_REVISION` of the agent (absent: revision 1). */
  revision?: number;
  pid: number;
  azkeep: string;
}

/** The answer to `token`: `core/tokens/policy.ts`'s `TokenResponse`. */
export interface AgentToken {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresOn: number;
  tenant: string;
  subscription: string;
  source: "cache" | "network" | "fallback";
  /** Epoch seconds after which the agent refreshes early, when the IdP set it. */
  refreshOn?: number;
}

export interface AgentStatus {
  pid: number;
  /** The vault process holding the unlocked store, when unlocked. */
  vaultPid?: number;
  locked: boolean;
  /** ISO time of the last lock or unlock. */
  since: string;
  /** ISO time the agent locks itself (idle or max lifetime), when it will. */
  until?: string;
  /** Why it is locked: `start`, `lock`, `idle`, `max`, `vault-exit`. */
  lockedBy?: string;
  idleMs?: number;
  maxMs?: number;
  startedAt: string;
  socket: string;
  configDir: string;
  /** The key provider of the store (`keyring`, `keyutils`, `passphrase`, …) as config.json names it. */
  provider?: string;
  /** Signed-in identities (usernames / client ids), when unlocked. */
  identities?: string[];
  /** How the agent checks who connects: `SO_PEERCRED` or the socket file's mode only. */
  peerCheck: string;
  /** What carries its connections: libuv's pipe directly (`raw-pipe`) or `node:net` (its fallback). */
  transport?: "raw-pipe" | "node-net";
  /** Whether the agent's processes are non-dumpable (no ptrace, no /proc/PID/mem, no core). */
  nonDumpable: boolean;
  agentOnly: boolean;
  /**
   * The front's time to answer the last (up to 1,000) token and profile requests, from the whole
   * frame read to the answer written: the release decision, and the vault when it is asked.
   */
  answerMs?: { p50: number; p99: number; count: number };
  azkeep: string;
  protocol: number;
}

// ---------------------------------------------------------------------------------------------
// Framing

/**
 * Buffer's own UTF-8 decoder, called without `toString`'s JavaScript around it (three functions
 * of Node's `buffer` module that a short client process would compile only for this: ~0.6 M
 * instructions of a cached `get-access-token`, docs/benchmarks.md). Undocumented but as old as
 * Buffer; `toString` when a Node lacks it.
 */
const utf8Slice = (
  Buffer.prototype as unknown as { utf8Slice?: (this: Uint8Array, start: number, end: number) => string }
).utf8Slice;

/** The text of UTF-8 `bytes` (malformed sequences become U+FFFD, as with `Buffer#toString`). */
export function utf8Text(bytes: Uint8Array): string {
  return typeof utf8Slice === "function"
    ? utf8Slice.call(bytes, 0, bytes.length)
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8");
}

/**
 * Splits a byte stream into lines of at most `max` bytes. Takes any `Uint8Array` (a socket's
 * `Buffer`, or `raw-pipe.ts`'s plain views, whose `indexOf` and `subarray` are V8's own).
 */
export class LineReader {
  private parts: Uint8Array[] = [];
  private size = 0;
  constructor(private readonly max: number = MAX_FRAME_BYTES) {}

  /** Adds bytes; returns the whole lines, or `"oversized"` once a line passes the limit. */
  push(chunk: Uint8Array): string[] | "oversized" {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > this.max) return "oversized";
      const line = utf8Text(this.size === 0 ? piece : Buffer.concat([...this.parts, piece]));
      this.parts = [];
      this.size = 0;
      lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.size += rest.length;
      if (this.size > this.max) return "oversized";
      this.parts.push(Uint8Array.prototype.slice.call(rest));
    }
    return lines;
  }

  /** Whether part of a line is waiting for its end. */
  get pending(): boolean {
    return this.size > 0;
  }
}

export function encodeFrame(message: AgentRequest | AgentResponse | Record<string, unknown>): string {
  return JSON.stringify(message) + "\n";
}

/**
 * A result that is JSON already (the front's remembered tokens, `front-cache.ts`): framed
 * without being encoded again for every answer, which at 1,000 answers a second is most of what
 * the front allocates per answer, and so of how often its collector stops it.
 */
export class EncodedResult {
  constructor(readonly json: string) {}
}

/** The bytes of `encodeFrame({ id, ok: true, result })` for a result encoded already. */
export function encodeResultFrame(id: number, result: EncodedResult): string {
  return `{"id":${id},"ok":true,"result":${result.json}}\n`;
}

/** The hint every "agent locked" error carries. */
export const UNLOCK_HINT = "Run `azkeep agent unlock` to unlock it.";
/** The hint of a client/agent version mismatch. */
export const RESTART_HINT = "Restart the agent: `azkeep agent stop && azkeep agent start`.";
