/**
 * Retries for transient identity-provider failures: network errors, timeouts, HTTP 5xx and
 * 429. Backoff is exponential with jitter; a `Retry-After` from the server is honoured (and
 * wins over the backoff). The number of attempts and the total time are both bounded, so a
 * caller with a 10 s timeout (Python's and Go's AzureCliCredential) still gets an answer.
 *
 * OAuth errors (`invalid_grant`, `invalid_client`, …) are never retried: the answer would not
 * change, and repeating a refused refresh-token grant can get the client throttled.
 */
import type { Context } from "../context.js";
import { NetworkError } from "../errors.js";

export interface RetryPolicy {
  /** Attempts in all, including the first. */
  maxAttempts: number;
  /** First backoff; doubled each retry. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest `Retry-After` honoured; a longer one ends the retries at once. */
  maxRetryAfterMs: number;
  /** Total time budget from the first attempt; no retry starts that would end after it. */
  budgetMs: number;
  /** Timeout of one attempt. */
  attemptTimeoutMs: number;
}

/** When no usable token is in hand: try harder. */
export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 300,
  maxDelayMs: 4_000,
  maxRetryAfterMs: 10_000,
  budgetMs: 25_000,
  attemptTimeoutMs: 10_000,
};

/** When a still-valid (if aging) token is in hand: fail fast and serve it. */
export const FALLBACK_RETRY: RetryPolicy = {
  maxAttempts: 2,
  baseDelayMs: 200,
  maxDelayMs: 1_000,
  maxRetryAfterMs: 2_000,
  budgetMs: 6_000,
  attemptTimeoutMs: 4_000,
};

/** Network trouble, 5xx and 429 may pass; anything else (OAuth errors, bugs) will not. */
export function isTransient(e: unknown): e is NetworkError {
  if (!(e instanceof NetworkError)) return false;
  return e.status === undefined || e.status === 429 || e.status === 408 || e.status >= 500;
}

export interface RetryInfo {
  attempt: number;
  /** Per-attempt abort signal (timeout and the caller's signal). */
  signal: AbortSignal;
  timeoutMs: number;
}

/**
 * Runs `fn` until it succeeds, throws a non-transient error, or the policy is exhausted; then
 * rethrows the last error. `onRetry` sees each transient failure before the wait.
 */
export async function withRetries<T>(
  ctx: Context,
  policy: RetryPolicy,
  fn: (info: RetryInfo) => Promise<T>,
  options: { signal?: AbortSignal; onRetry?: (e: NetworkError, delayMs: number) => void } = {},
): Promise<T> {
  const start = ctx.clock.now();
  let delay = policy.baseDelayMs;
  for (let attempt = 1; ; attempt++) {
    const elapsed = ctx.clock.now() - start;
    const timeoutMs = Math.max(250, Math.min(policy.attemptTimeoutMs, policy.budgetMs - elapsed));
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      return await fn({ attempt, signal, timeoutMs });
    } catch (e) {
      if (options.signal?.aborted) throw e;
      const err = timeout.aborted && !isTransient(e) ? asTimeout(e) : e;
      if (!isTransient(err)) throw err;
      if (attempt >= policy.maxAttempts) throw err;
      let wait: number;
      if (err.retryAfterMs !== undefined) {
        if (err.retryAfterMs > policy.maxRetryAfterMs) throw err;
        wait = err.retryAfterMs;
      } else {
        const jitter = (ctx.random.bytes(1)[0] ?? 0) / 255; // 0..1
        wait = Math.min(policy.maxDelayMs, delay * (0.5 + jitter));
        delay *= 2;
      }
      if (ctx.clock.now() - start + wait + 250 > policy.budgetMs) throw err;
      options.onRetry?.(err, wait);
      await ctx.clock.sleep(wait, options.signal);
    }
  }
}

function asTimeout(e: unknown): NetworkError {
  return new NetworkError("The identity provider did not answer in time.", {
    cause: e,
    hint: "Check the network connection and any proxy (HTTPS_PROXY); then try again.",
  });
}
