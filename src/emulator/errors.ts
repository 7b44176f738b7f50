/**
 * Entra ID errors as the token endpoint returns them: `error`, `error_description` starting
 * with `AADSTSnnnnn:` and ending with the trace id, correlation id and timestamp,
 * `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
 */
import { randomUUID } from "node:crypto";

export class EntraError extends Error {
  constructor(
    readonly code: number,
    readonly error: string,
    message: string,
    readonly status = 400,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Entra's timestamp format: `2026-11-29 00:05:14Z`. */
export function entraTimestamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, "Z");
}

export function entraErrorBody(
  e: EntraError,
  opts: { origin: string; correlationId: string; now: number },
): Record<string, unknown> {
  const traceId = randomUUID();
  const timestamp = entraTimestamp(opts.now);
  return {
    error: e.error,
    error_description:
      `AADSTS${e.code}: ${e.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${opts.correlationId}` +
      `\r\nTimestamp: ${timestamp}`,
    error_codes: [e.code],
    timestamp,
    trace_id: traceId,
    correlation_id: opts.correlationId,
    error_uri: `${opts.origin}/error?code=${e.code}`,
    ...e.extra,
  };
}

/** The errors the emulator returns, by AADSTS code. */
export const E = {
  missingParam: (name: string) =>
    new EntraError(
      900144,
      "invalid_request",
      `The request body must contain the following parameter: '${name}'.`,
    ),
  postOnly: (method: string) =>
    new EntraError(
      900561,
      "invalid_request",
      `The endpoint only accepts POST requests. Received a ${method} request.`,
      400,
    ),
  malformed: (detail = "Request is malformed or invalid.") =>
    new EntraError(9002313, "invalid_request", `Invalid request. ${detail}`),
  unsupportedGrant: (grant: string) =>
    new EntraError(
      70003,
      "unsupported_grant_type",
      `The app requested an unsupported grant type '${grant}'.`,
    ),
  tenantNotFound: (tenant: string) =>
    new EntraError(
      90002,
      "invalid_tenant",
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    ),
  noTenant: () =>
    new EntraError(
      50059,
      "invalid_request",
      "No tenant-identifying information found in either the request or implied by any provided credentials.",
    ),
  appNotFound: (clientId: string, tenant: string) =>
    new EntraError(
      700016,
      "unauthorized_client",
      `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    ),
  badSecret: (clientId: string) =>
    new EntraError(
      7000215,
      "invalid_client",
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
      401,
    ),
  secretExpired: (clientId: string) =>
    new EntraError(
      7000222,
      "invalid_client",
      `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
      401,
    ),
  credentialRequired: () =>
    new EntraError(
      7000218,
      "invalid_client",
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      401,
    ),
  publicClientWithSecret: () =>
    new EntraError(
      700025,
      "invalid_client",
      "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
      401,
    ),
  confidentialOnly: (clientId: string) =>
    new EntraError(
      700027,
      "invalid_client",
      `The application '${clientId}' is a public client and cannot use the client credentials grant.`,
      401,
    ),
  assertionKeyNotFound: (thumbprint: string, clientId: string) =>
    new EntraError(
      700027,
      "invalid_client",
      `Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${clientId}'.]`,
      401,
    ),
  assertionSignature: (reason: string) =>
    new EntraError(
      700027,
      "invalid_client",
      `Client assertion failed signature validation. [Reason - ${reason}]`,
      401,
    ),
  assertionMalformed: () =>
    new EntraError(
      50027,
      "invalid_request",
      "JWT token is invalid or malformed. The client assertion must be a signed JWT.",
    ),
  assertionAudience: (aud: string) =>
    new EntraError(
      700021,
      "invalid_client",
      `Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials . Audience: '${aud}'.`,
      401,
    ),
  assertionSubject: () =>
    new EntraError(
      700021,
      "invalid_client",
      "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
      401,
    ),
  assertionTime: (now: number, nbf: number | undefined, exp: number | undefined) =>
    new EntraError(
      700024,
      "invalid_client",
      `Client assertion is not within its valid time range. Current time: ${new Date(now * 1000).toISOString()}, assertion valid from ${nbf ? new Date(nbf * 1000).toISOString() : "(none)"}, expiry time of assertion ${exp ? new Date(exp * 1000).toISOString() : "(none)"}. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .`,
      401,
    ),
  federatedIssuer: (iss: string) =>
    new EntraError(
      700211,
      "invalid_client",
      `No matching federated identity record found for presented assertion issuer '${iss}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
      401,
    ),
  federatedAudience: (aud: string) =>
    new EntraError(
      700212,
      "invalid_client",
      `No matching federated identity record found for presented assertion audience '${aud}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
      401,
    ),
  federatedSubject: (sub: string) =>
    new EntraError(
      700213,
      "invalid_client",
      `No matching federated identity record found for presented assertion subject '${sub}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
      401,
    ),
  federatedSignature: (iss: string) =>
    new EntraError(
      50013,
      "invalid_client",
      `Assertion failed signature validation. [Reason - The key was not found among the keys of issuer '${iss}'.]`,
      401,
    ),
  userNotFound: (tenantName: string) =>
    new EntraError(
      50034,
      "invalid_grant",
      `The user account {EmailHidden} does not exist in the ${tenantName} directory. To sign into this application, the account must be added to the directory.`,
    ),
  userNotInTenant: (upn: string, tenantId: string) =>
    new EntraError(
      50020,
      "invalid_grant",
      `User account '${upn}' from identity provider 'live.com' does not exist in tenant '${tenantId}' and cannot access the application in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.`,
    ),
  badPassword: () =>
    new EntraError(
      50126,
      "invalid_grant",
      "Error validating credentials due to invalid username or password.",
    ),
  mfaRequired: (resourceAppId: string) =>
    new EntraError(
      50076,
      "interaction_required",
      `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${resourceAppId}'.`,
      400,
      { suberror: "basic_action" },
    ),
  consentRequired: (clientId: string) =>
    new EntraError(
      65001,
      "invalid_grant",
      `The user or administrator has not consented to use the application with ID '${clientId}'. Send an interactive authorization request for this user and resource.`,
      400,
      { suberror: "consent_required" },
    ),
  scopeMissing: () =>
    new EntraError(
      90014,
      "invalid_request",
      "The required field 'scope' is missing from the credential. Ensure that you have all the necessary parameters for the login request.",
    ),
  invalidScope: (scope: string) =>
    new EntraError(
      70011,
      "invalid_scope",
      `The provided value for the input parameter 'scope' is not valid. The scope '${scope}' is not valid.`,
    ),
  multipleResources: (scope: string) =>
    new EntraError(
      28000,
      "invalid_request",
      `Provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${scope} is not valid.`,
    ),
  clientCredentialsScope: (scope: string) =>
    new EntraError(
      1002012,
      "invalid_scope",
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    ),
  resourceNotFound: (resource: string, tenant: string) =>
    new EntraError(
      500011,
      "invalid_resource",
      `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
    ),
  grantMalformed: () =>
    new EntraError(9002313, "invalid_grant", "Invalid request. Request is malformed or invalid."),
  grantOtherClient: (what: string) =>
    new EntraError(
      70000,
      "invalid_grant",
      `Provided grant is invalid or malformed: the ${what} was issued to a different client.`,
    ),
  refreshExpired: (issuedAt: number, inactiveSeconds: number) =>
    new EntraError(
      700082,
      "invalid_grant",
      `The refresh token has expired due to inactivity. The token was issued on ${new Date(issuedAt).toISOString()} and was inactive for ${formatDuration(inactiveSeconds)}.`,
      400,
      { suberror: "bad_token" },
    ),
  refreshRevoked: (issuedAt: number, validFrom: number) =>
    new EntraError(
      50173,
      "invalid_grant",
      `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${new Date(issuedAt).toISOString()}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${new Date(validFrom).toISOString()}'.`,
      400,
      { suberror: "bad_token" },
    ),
  codeExpired: () =>
    new EntraError(
      70008,
      "invalid_grant",
      "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
    ),
  codeRedeemed: () =>
    new EntraError(
      54005,
      "invalid_grant",
      "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
    ),
  redirectMismatch: () =>
    new EntraError(
      70000,
      "invalid_grant",
      "Provided grant is invalid or malformed: the redirect_uri does not match the one the authorization code was issued to.",
    ),
  pkceMismatch: () =>
    new EntraError(
      50148,
      "invalid_grant",
      "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
    ),
  authorizationPending: () =>
    new EntraError(
      70016,
      "authorization_pending",
      "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    ),
  deviceCodeExpired: () =>
    new EntraError(
      70020,
      "expired_token",
      "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
    ),
  deviceCodeDeclined: () =>
    new EntraError(70000, "authorization_declined", "The user declined to sign in on the device code page."),
  deviceCodeInvalid: () =>
    new EntraError(
      70000,
      "invalid_grant",
      "The provided value for the input parameter 'device_code' is not valid.",
    ),
  claimsMalformed: () =>
    new EntraError(
      90100,
      "invalid_request",
      "The 'claims' parameter is not valid JSON. It must be a JSON object such as {\"access_token\":{…}}.",
    ),
};

function formatDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return `${String(d).padStart(2, "0")}:${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}
