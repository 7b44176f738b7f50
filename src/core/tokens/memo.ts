/**
 * A short memory of identity-provider failures, shared by azkeep processes through a small
 * file in the runtime folder (0700). It is read and written only under the store lock, so it
 * needs no lock of its own.
 *
 * Why: when the IdP is down, the processes queued behind the refresh lock would otherwise each
 * repeat the whole retry sequence in turn (50 processes × a few seconds). With the memo, the
 * first one retries and the rest serve their aging token, or fail fast, for a few seconds (or
 * as long as the server's Retry-After asked). It holds no secret: a key naming the principal,
 * tenant and scope, a time and an error message (messages never contain tokens).
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "../context.js";

export interface RecentFailure {
  message: string;
  /** How long the memo still holds. */
  retryInMs: number;
}

export interface FailureMemo {
  get(key: string): Promise<RecentFailure | undefined>;
  set(key: string, message: string, retryAfterMs?: number): Promise<void>;
  clear(key: string): Promise<void>;
}

/** How long a failure without Retry-After is remembered. */
export const FAILURE_MEMO_MS = 5_000;
/** Longest a Retry-After is remembered. */
const MAX_MEMO_MS = 60_000;

type MemoFile = Record<string, { until: number; message: string }>;

export function createFileFailureMemo(ctx: Context): FailureMemo {
  const dir = ctx.paths.runtimeDir;
  const file = join(dir, "refresh-failures.json");
  const load = async (): Promise<MemoFile> => {
    try {
      const v: unknown = JSON.parse(await readFile(file, "utf8"));
      return v && typeof v === "object" && !Array.isArray(v) ? (v as MemoFile) : {};
    } catch {
      return {};
    }
  };
  const save = async (m: MemoFile): Promise<void> => {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.${ctx.random.uuid()}.tmp`;
      await writeFile(tmp, JSON.stringify(m), { mode: 0o600 });
      await rename(tmp, file);
    } catch (e) {
      // Best effort: without the memo, processes only retry more.
      ctx.logger.debug(`token: cannot write ${file}: ${(e as Error).message}`);
    }
  };
  return {
    async get(key) {
      const m = await load();
      const e = m[key];
      const left = e ? e.until - ctx.clock.now() : 0;
      return e && left > 0 ? { message: e.message, retryInMs: left } : undefined;
    },
    async set(key, message, retryAfterMs) {
      const now = ctx.clock.now();
      const m = await load();
      for (const k of Object.keys(m)) if ((m[k]?.until ?? 0) <= now) delete m[k];
      m[key] = { until: now + Math.min(MAX_MEMO_MS, Math.max(FAILURE_MEMO_MS, retryAfterMs ?? 0)), message };
      await save(m);
    },
    async clear(key) {
      const m = await load();
      if (!(key in m)) return;
      delete m[key];
      await save(m);
    },
  };
}

/** An in-process memo (tests, the memory store). */
export function createMemoryFailureMemo(now: () => number): FailureMemo {
  const m = new Map<string, { until: number; message: string }>();
  return {
    async get(key) {
      const e = m.get(key);
      const left = e ? e.until - now() : 0;
      return e && left > 0 ? { message: e.message, retryInMs: left } : undefined;
    },
    async set(key, message, retryAfterMs) {
      m.set(key, {
        until: now() + Math.min(MAX_MEMO_MS, Math.max(FAILURE_MEMO_MS, retryAfterMs ?? 0)),
        message,
      });
    },
    async clear(key) {
      m.delete(key);
    },
  };
}
