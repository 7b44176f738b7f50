/**
 * The front's memory of access tokens it released, so that a cached token costs the front one
 * release decision and three `stat`s instead of a trip to the vault, which re-reads and checks
 * the store's files for every request (docs/benchmarks.md: the vault hop was the largest part of
 * a cached answer after the client's own start).
 *
 * An entry answers only what the vault would answer itself: the same request (no claims
 * challenge, no `--force-refresh`), a token the vault took from its cache or the network (never
 * an aging `fallback`), still fresh by the vault's own rule (more than `REUSE_MARGIN_S` left and
 * not past `refreshOn`), and store files that have not changed since the vault answered
 * (`tokens.sealed`, `profile.json`, `config.json`: inode, size, mtime, ctime). Any change — a
 * login, `account set`, a refresh by another process, an outside edit — sends the next request
 * to the vault, which re-reads and checks everything as before.
 *
 * The front sees these tokens on their way out anyway; it holds no refresh token, secret or key.
 * `clear()` runs on every lock, stop and idle/max expiry and on every store write through the
 * agent.
 */
import { fileSignature } from "../core/store/files.js";
import { join } from "node:path";
import { EncodedResult, type AgentToken } from "./protocol.js";

/** The vault's reuse margin (`core/tokens/cache.ts` REUSE_MARGIN_S): kept the same by a test. */
export const FRONT_REUSE_MARGIN_S = 300;

const WATCHED = ["tokens.sealed", "profile.json", "config.json"];

/** Most requests remembered (one per resource/subscription/tenant asked; far more than in use). */
const MAX_ENTRIES = 256;

interface Entry {
  token: AgentToken;
  files: string;
  /** The answer as a cache hit, in JSON: made at the first hit, then sent as it is. */
  answer?: EncodedResult;
}

export class ReleasedTokens {
  private readonly entries = new Map<string, Entry>();
  private readonly watched: string[];

  constructor(
    configDir: string,
    private readonly nowS: () => number = () => Date.now() / 1000,
  ) {
    this.watched = WATCHED.map((name) => join(configDir, name));
  }

  /** What the store's files look like now (compared before a cached answer is used). */
  filesNow(): string {
    let sig = "";
    for (const path of this.watched) sig += `${fileSignature(path) ?? "-"}|`;
    return sig;
  }

  /** The key of a token request, or undefined when the vault must answer it every time. */
  keyOf(request: Record<string, unknown>): string | undefined {
    if (request.claims !== undefined || request.forceRefresh !== undefined) return undefined;
    const pick = (k: string) => (typeof request[k] === "string" ? request[k] : undefined);
    const scopes = Array.isArray(request.scopes) ? request.scopes : undefined;
    return JSON.stringify([
      scopes,
      pick("resource"),
      pick("resourceType"),
      pick("subscription"),
      pick("tenant"),
    ]);
  }

  /**
   * The remembered token for `key` as a cache hit, when the vault would answer it too: in JSON,
   * made once per entry (the front sends it as it is).
   */
  answer(key: string, files: string): EncodedResult | undefined {
    const e = this.usable(key, files);
    return e && (e.answer ??= new EncodedResult(JSON.stringify({ ...e.token, source: "cache" })));
  }

  /** The entry of `key` when it is fresh and the files unchanged; a stale one is forgotten. */
  private usable(key: string, files: string): Entry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const now = this.nowS();
    const fresh =
      e.token.expiresOn - now > FRONT_REUSE_MARGIN_S &&
      (e.token.refreshOn === undefined || e.token.refreshOn > now);
    if (fresh && e.files === files) return e;
    this.entries.delete(key);
    return undefined;
  }

  /** Remembers the vault's answer to `key`, made while the files looked like `files`. */
  put(key: string, files: string, answer: unknown): void {
    const t = answer as Partial<AgentToken> | null;
    if (
      !t ||
      typeof t.accessToken !== "string" ||
      typeof t.expiresOn !== "number" ||
      (t.source !== "cache" && t.source !== "network")
    )
      return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { token: t as AgentToken, files });
  }

  clear(): void {
    this.entries.clear();
  }
}
