/**
 * The HTTP calls every flow makes, through `ctx.fetch`: a form POST to a token endpoint and a
 * JSON GET. Failures become one of two errors: `IdentityProviderError` (the server said no,
 * in OAuth terms) or `NetworkError` (no answer, 5xx, 429, or an answer that is not OAuth JSON),
 * which carries the HTTP status and Retry-After so a caller's policy can retry. No retries here.
 */
import type { Context } from "../context.js";
import { NetworkError } from "../errors.js";
import { cannotReach, describeFetchFailure } from "../net.js";
import { registerSecret } from "../redact.js";
import { identityProviderError, isOAuthErrorBody } from "../entra/errors.js";

const DEFAULT_TIMEOUT_MS = 30_000;

/** Form fields and response fields that hold a secret: registered with the redactor. */
const FORM_SECRETS = [
  "password",
  "client_secret",
  "client_assertion",
  "assertion",
  "refresh_token",
  "code",
  "code_verifier",
  "device_code",
];
const RESPONSE_SECRETS = ["access_token", "refresh_token", "id_token", "device_code"];

export interface RequestOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The exact command that fixes a sign-in problem, for `auth_required` hints. */
  login: string;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** Retry-After as seconds or an HTTP date, in milliseconds from now. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const s = value.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

function networkFailure(url: string, e: unknown): NetworkError {
  const cause = e as { name?: string } | undefined;
  if (cause?.name === "AbortError") throw e;
  const { proxy } = describeFetchFailure(e);
  return new NetworkError(cannotReach(hostOf(url), e), {
    cause: e,
    hint: proxy
      ? `The proxy ${proxy} (HTTPS_PROXY / HTTP_PROXY) did not let the request through: check the proxy, its credentials, or NO_PROXY.`
      : "Check the network connection, and HTTPS_PROXY / NO_PROXY / NODE_EXTRA_CA_CERTS if you are behind a proxy.",
  });
}

function withTimeout(options: { signal?: AbortSignal; timeoutMs?: number }): AbortSignal {
  const t = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  return options.signal ? AbortSignal.any([options.signal, t]) : t;
}

/** Reads a response as OAuth JSON: the parsed object, or the right error. */
export async function readOAuthJson(
  ctx: Context,
  url: string,
  res: Response,
  login: string,
): Promise<Record<string, unknown>> {
  const text = await res.text().catch(() => "");
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"), ctx.clock.now());
  const transient = res.status === 429 || res.status >= 500;
  if (transient) {
    const detail = isOAuthErrorBody(body) ? `: ${(body.error_description ?? body.error).split("\n")[0]}` : "";
    return Promise.reject(
      new NetworkError(`${hostOf(url)} answered HTTP ${res.status}${detail}.`, {
        status: res.status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        hint:
          res.status === 429
            ? "The identity provider is throttling requests; try again later."
            : "The identity provider is having trouble; try again later.",
      }),
    );
  }
  if (isOAuthErrorBody(body)) throw identityProviderError(body, res.status, login);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new NetworkError(
      `${hostOf(url)} answered HTTP ${res.status} with something that is not a JSON object.`,
      {
        status: res.status,
        hint: "Check that the cloud's endpoints point at an identity provider (`azkeep cloud show`) and any proxy in between.",
      },
    );
  }
  if (!res.ok) {
    throw new NetworkError(`${hostOf(url)} answered HTTP ${res.status}.`, { status: res.status });
  }
  const o = body as Record<string, unknown>;
  // What the server just gave: redacted wherever it appears later (an opaque refresh token
  // has no shape the patterns would know).
  for (const k of RESPONSE_SECRETS) if (typeof o[k] === "string") registerSecret(o[k]);
  return o;
}

/** POSTs `form` as application/x-www-form-urlencoded and reads OAuth JSON. */
export async function postForm(
  ctx: Context,
  url: string,
  form: Record<string, string | undefined>,
  options: RequestOptions,
): Promise<Record<string, unknown>> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) {
    if (v === undefined) continue;
    body.set(k, v);
    if (FORM_SECRETS.includes(k)) registerSecret(v);
  }
  ctx.logger.debug(`POST ${url}`);
  let res: Response;
  try {
    res = await ctx.fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded;charset=utf-8",
        accept: "application/json",
        ...options.headers,
      },
      body,
      signal: withTimeout(options),
      redirect: "manual",
    });
  } catch (e) {
    throw networkFailure(url, e);
  }
  ctx.logger.debug(`POST ${url} → ${res.status}`);
  return readOAuthJson(ctx, url, res, options.login);
}

/** GETs JSON (discovery documents, IMDS). */
export async function getJson(
  ctx: Context,
  url: string,
  options: RequestOptions,
): Promise<Record<string, unknown>> {
  ctx.logger.debug(`GET ${url}`);
  let res: Response;
  try {
    res = await ctx.fetch(url, {
      headers: { accept: "application/json", ...options.headers },
      signal: withTimeout(options),
      redirect: "manual",
    });
  } catch (e) {
    throw networkFailure(url, e);
  }
  ctx.logger.debug(`GET ${url} → ${res.status}`);
  return readOAuthJson(ctx, url, res, options.login);
}
