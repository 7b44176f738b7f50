/**
 * The few error classes azkeep's library throws. Each carries a stable `code` (what a caller
 * branches on), an optional `hint` (the next step for a person, e.g. the command to run) and
 * the underlying `cause`. Messages and hints never contain a token or secret.
 *
 * The CLI maps codes to exit codes in one place: `src/cli/exit-codes.ts`.
 */

export type ErrorCode =
  /** Bad flags or arguments: exit 2. */
  | "usage"
  /** A person must sign in (again): no account, expired/revoked refresh token, MFA needed. */
  | "auth_required"
  /** The identity provider refused the request (wrong secret, unknown app/tenant, …). */
  | "auth_failed"
  /** Something named does not exist (subscription, account, cloud). */
  | "not_found"
  /** Network failure, timeout, 5xx, 429, garbage from a server: may work when retried. */
  | "network"
  /** The sealed store cannot be opened: damaged, wrong key, key missing, unknown version. */
  | "store_damaged"
  /** profile.json or config.json was changed outside azkeep: not used until undone or repaired. */
  | "store_tampered"
  /** The store or its folder has unsafe permissions, or the key provider is unavailable. */
  | "store_unavailable"
  /** A file the user named (certificate, seed, federated token) is missing or malformed. */
  | "bad_input"
  /** Local configuration conflicts (port in use, lock timeout, unsupported platform). */
  | "config"
  /** The user cancelled (Ctrl-C, closed the browser, denied consent). */
  | "cancelled"
  /** The agent's release gate refused to hand out a token or profile data. */
  | "denied"
  /** A bug: should never be seen. */
  | "internal";

export interface AzkeepErrorOptions {
  /** The next step for a person, e.g. "Run `azkeep login --tenant contoso.com`." */
  hint?: string;
  cause?: unknown;
  /** Extra structured detail, safe to print (never secrets). */
  details?: Record<string, unknown>;
}

export class AzkeepError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AzkeepErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AzkeepError";
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }
}

/** Bad flags or arguments (exit 2). */
export class UsageError extends AzkeepError {
  constructor(message: string, options: AzkeepErrorOptions = {}) {
    super("usage", message, options);
    this.name = "UsageError";
  }
}

/**
 * A person must act: sign in, sign in again, or pass MFA. Like Azure Identity's
 * `AuthenticationRequiredError`. The hint is the exact `azkeep login …` command.
 */
export class AuthenticationRequiredError extends AzkeepError {
  constructor(message: string, options: AzkeepErrorOptions = {}) {
    super("auth_required", message, options);
    this.name = "AuthenticationRequiredError";
  }
}

/**
 * The identity provider answered with an OAuth error. `error` is the RFC 6749 code
 * (`invalid_grant`, …); `aadsts` the Entra code when the description starts with `AADSTSnnnn:`.
 */
export class IdentityProviderError extends AzkeepError {
  readonly error: string;
  readonly aadsts: number | undefined;
  readonly status: number | undefined;

  constructor(
    error: string,
    description: string,
    options: AzkeepErrorOptions & { status?: number; code?: ErrorCode } = {},
  ) {
    super(options.code ?? "auth_failed", description || error, options);
    this.name = "IdentityProviderError";
    this.error = error;
    this.status = options.status;
    const m = /^AADSTS(\d+)/.exec(description);
    this.aadsts = m?.[1] === undefined ? undefined : Number(m[1]);
  }
}

/** A network failure or a server answer that cannot be used; retrying may help. */
export class NetworkError extends AzkeepError {
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    options: AzkeepErrorOptions & { status?: number; retryAfterMs?: number } = {},
  ) {
    super("network", message, options);
    this.name = "NetworkError";
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isAzkeepError(e: unknown): e is AzkeepError {
  return e instanceof AzkeepError;
}
