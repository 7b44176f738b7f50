/**
 * Entra's error answers and what a person should do about each. Entra answers OAuth errors as
 * JSON `{error, error_description: "AADSTSnnnnn: …", error_codes, …}`; the AADSTS number says
 * more than the RFC 6749 `error`, so the next step is chosen from it.
 */
import { IdentityProviderError, type ErrorCode } from "../errors.js";

/** RFC 6749/8628 errors that mean a person must sign in (again). */
const SIGN_IN_AGAIN = new Set([
  "invalid_grant",
  "interaction_required",
  "login_required",
  "consent_required",
]);

/** AADSTS numbers with their own next step. */
const AADSTS_HINTS: Record<number, (login: string) => { code: ErrorCode; hint: string }> = {
  // Wrong client secret: az's PASSWORD_CERTIFICATE_WARNING, since people pass a PEM path as -p.
  7000215: () => ({
    code: "auth_failed",
    hint: "Check the client secret. To sign in with a certificate, use `--certificate <PEM file>` instead of a password.",
  }),
  700016: () => ({
    code: "auth_failed",
    hint: "Check the application (client) id and that the app exists in the tenant given with --tenant.",
  }),
  90002: () => ({
    code: "auth_failed",
    hint: "Check the tenant given with --tenant (a tenant GUID or a verified domain such as contoso.onmicrosoft.com).",
  }),
  50126: () => ({ code: "auth_failed", hint: "Check the user name and password." }),
  // MFA: per tenant, so the hint names the tenant (Azure/azure-cli PR #31742).
  50076: (login) => ({
    code: "auth_required",
    hint: `Multi-factor authentication is required. Run:\n${login}`,
  }),
  50079: (login) => ({
    code: "auth_required",
    hint: `Multi-factor authentication is required. Run:\n${login}`,
  }),
  700082: (login) => ({ code: "auth_required", hint: `The sign-in has expired. Run:\n${login}` }),
  50173: (login) => ({ code: "auth_required", hint: `The sign-in was revoked. Run:\n${login}` }),
  70043: (login) => ({ code: "auth_required", hint: `The sign-in has expired. Run:\n${login}` }),
  700024: () => ({
    code: "auth_failed",
    hint: "The federated token has expired or is not valid yet; get a fresh one from your workload identity provider.",
  }),
  70021: () => ({
    code: "auth_failed",
    hint: "No federated credential of the app matches the token's issuer, subject and audience.",
  }),
};

export interface OAuthErrorBody {
  error: string;
  error_description?: string;
  error_codes?: number[];
  suberror?: string;
}

export function isOAuthErrorBody(v: unknown): v is OAuthErrorBody {
  return typeof v === "object" && v !== null && typeof (v as { error?: unknown }).error === "string";
}

/**
 * Builds the error for an OAuth error answer. `login` is the exact command that fixes a
 * sign-in problem (`azkeep login --tenant … --scope …`).
 */
export function identityProviderError(
  body: OAuthErrorBody,
  status: number,
  login: string,
): IdentityProviderError {
  const description = firstLine(body.error_description ?? "") || body.error;
  const aadsts = /^AADSTS(\d+)/.exec(description)?.[1] ?? body.error_codes?.[0];
  const special = aadsts === undefined ? undefined : AADSTS_HINTS[Number(aadsts)]?.(login);
  if (special) return new IdentityProviderError(body.error, description, { status, ...special });
  if (SIGN_IN_AGAIN.has(body.error)) {
    return new IdentityProviderError(body.error, description, {
      status,
      code: "auth_required",
      hint: `Interactive authentication is needed. Run:\n${login}`,
    });
  }
  return new IdentityProviderError(body.error, description, { status });
}

/** Entra appends trace and correlation ids on later lines; the first line is the message. */
function firstLine(s: string): string {
  return (s.split(/\r?\n/)[0] ?? "").trim();
}
