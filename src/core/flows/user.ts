/**
 * Entra sign-in flows for a person: browser (authorization code + PKCE S256, state, nonce),
 * device code (RFC 8628) and username/password (ROPC, discouraged: no MFA, no federation,
 * no personal accounts). Each returns the first token with its refresh token.
 */
import { createHash } from "node:crypto";
import type { Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError, IdentityProviderError, NetworkError } from "../errors.js";
import { authorizeEndpoint, deviceCodeEndpoint, tokenEndpoint } from "../entra/authority.js";
import { claimsParameter } from "../entra/claims.js";
import { stringClaim } from "../entra/jwt.js";
import { postForm } from "./http.js";
import { awaitAuthorizationResponse } from "./interactive.js";
import { startLoopback } from "./loopback.js";
import { tokenResultFrom, userLoginCommand, withOidcScopes, type TokenResult } from "./token.js";

export interface UserFlowRequest {
  cloud: Cloud;
  /** GUID, domain or `organizations`. */
  tenant: string;
  clientId: string;
  scopes: string[];
  claims?: string;
  signal?: AbortSignal;
}

export interface BrowserFlowRequest extends UserFlowRequest {
  port?: number;
  noBrowser?: boolean;
  timeoutMs?: number;
}

export interface UserSignInResult {
  token: TokenResult;
  /** `preferred_username`, else `upn`, else `email` of the id token (MSAL's rule). */
  username: string;
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/** The user name MSAL records for an account. */
export function usernameOf(token: TokenResult, fallback?: string): string {
  const c = token.idTokenClaims;
  const name =
    stringClaim(c, "preferred_username") ?? stringClaim(c, "upn") ?? stringClaim(c, "email") ?? fallback;
  if (!name) {
    throw new AzkeepError("auth_failed", "The identity provider's answer has no id token naming the user.", {
      hint: "Check that the cloud's authority is an Entra ID endpoint (`azkeep cloud show`).",
    });
  }
  return name;
}

function requireRefreshToken(token: TokenResult): void {
  if (!token.refreshToken) {
    throw new AzkeepError("auth_failed", "The identity provider returned no refresh token.", {
      hint: "azkeep asks for offline_access; check that the app registration allows it.",
    });
  }
}

/** Browser sign-in: PKCE S256 + state + nonce, loopback redirect to `http://localhost:<port>`. */
export async function browserSignIn(ctx: Context, req: BrowserFlowRequest): Promise<UserSignInResult> {
  const verifier = b64url(ctx.random.bytes(32));
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const state = b64url(ctx.random.bytes(16));
  const nonce = createHash("sha256").update(ctx.random.bytes(32)).digest("hex");
  const listener = await startLoopback({
    state,
    ...(req.port === undefined ? {} : { port: req.port }),
    redirectHost: "localhost",
  });
  try {
    const url = new URL(authorizeEndpoint(req.cloud, req.tenant));
    const claims = claimsParameter(ctx.env, req.claims);
    const params: Record<string, string | undefined> = {
      client_id: req.clientId,
      response_type: "code",
      redirect_uri: listener.redirectUri,
      scope: withOidcScopes(req.scopes),
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
      nonce,
      client_info: "1",
      claims,
      prompt: "select_account",
    };
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
    const response = await awaitAuthorizationResponse(ctx, {
      authorizeUrl: url.toString(),
      listener,
      state,
      ...(req.noBrowser ? { noBrowser: true } : {}),
      ...(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs }),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    const endpoint = tokenEndpoint(req.cloud, req.tenant);
    let token: TokenResult;
    try {
      const body = await postForm(
        ctx,
        endpoint,
        {
          client_id: req.clientId,
          grant_type: "authorization_code",
          code: response.get("code") ?? "",
          code_verifier: verifier,
          redirect_uri: listener.redirectUri,
          scope: withOidcScopes(req.scopes),
          client_info: "1",
          claims,
        },
        {
          login: userLoginCommand({ tenant: req.tenant, scopes: req.scopes }),
          ...(req.signal ? { signal: req.signal } : {}),
        },
      );
      token = tokenResultFrom(ctx, body, { tenant: req.tenant, scopes: req.scopes, url: endpoint });
      // The id token must answer this sign-in: a replayed code from another one carries another nonce.
      if (token.idTokenClaims?.nonce !== nonce) {
        throw new AzkeepError(
          "auth_failed",
          "The id token does not belong to this sign-in (nonce mismatch); nothing was saved.",
          {
            hint: "Run the login command again.",
          },
        );
      }
      requireRefreshToken(token);
    } catch (e) {
      listener.respond({
        ok: false,
        title: "Sign-in failed",
        message: `${e instanceof Error ? e.message : String(e)} See the terminal for what to do next.`,
      });
      throw e;
    }
    const username = usernameOf(token);
    listener.respond({
      ok: true,
      title: "You have signed in to azkeep",
      message: `Signed in as ${username}. You can close this window and go back to the terminal.`,
    });
    return { token, username };
  } finally {
    await listener.close();
  }
}

/** What the device code flow shows a person. */
export interface DeviceCodePrompt {
  userCode: string;
  verificationUri: string;
  message: string;
  expiresInSec: number;
}

/**
 * Device code sign-in: shows the message (and, on a terminal, a QR code of the address) on stderr, then polls
 * at `interval`, adding 5 s on `slow_down` (RFC 8628 §3.5), until approved, denied or expired.
 */
export async function deviceCodeSignIn(
  ctx: Context,
  req: UserFlowRequest & { onPrompt?: (p: DeviceCodePrompt) => void; qr?: boolean },
): Promise<UserSignInResult> {
  const login = userLoginCommand({ tenant: req.tenant, scopes: req.scopes });
  const claims = claimsParameter(ctx.env, req.claims);
  const dc = await postForm(
    ctx,
    deviceCodeEndpoint(req.cloud, req.tenant),
    { client_id: req.clientId, scope: withOidcScopes(req.scopes), claims },
    { login, ...(req.signal ? { signal: req.signal } : {}) },
  );
  const deviceCode = dc.device_code;
  const userCode = dc.user_code;
  const verificationUri = dc.verification_uri ?? dc.verification_url;
  if (typeof deviceCode !== "string" || typeof userCode !== "string" || typeof verificationUri !== "string") {
    throw new AzkeepError(
      "network",
      "The device code answer lacks device_code, user_code or verification_uri.",
      {
        hint: "Check that the cloud's authority is an Entra ID endpoint (`azkeep cloud show`).",
      },
    );
  }
  const expiresIn = Number(dc.expires_in) > 0 ? Number(dc.expires_in) : 900;
  let intervalSec = Number(dc.interval) > 0 ? Number(dc.interval) : 5;
  const message =
    typeof dc.message === "string" && dc.message
      ? dc.message
      : `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`;
  const prompt: DeviceCodePrompt = { userCode, verificationUri, message, expiresInSec: expiresIn };
  ctx.progress.message(message);
  // The QR code only on a terminal: the message above has the address and the code for a log.
  if (req.qr !== false && ctx.progress.terminal) ctx.progress.message(await qrCode(verificationUri));
  req.onPrompt?.(prompt);
  const deadline = ctx.clock.now() + expiresIn * 1000;
  const endpoint = tokenEndpoint(req.cloud, req.tenant);
  for (;;) {
    await ctx.clock.sleep(intervalSec * 1000, req.signal);
    try {
      const body = await postForm(
        ctx,
        endpoint,
        {
          client_id: req.clientId,
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: deviceCode,
          client_info: "1",
          claims,
        },
        { login, ...(req.signal ? { signal: req.signal } : {}) },
      );
      const token = tokenResultFrom(ctx, body, { tenant: req.tenant, scopes: req.scopes, url: endpoint });
      requireRefreshToken(token);
      return { token, username: usernameOf(token) };
    } catch (e) {
      if (
        e instanceof NetworkError &&
        (e.status === undefined || e.status === 429 || e.status === 408 || e.status >= 500)
      ) {
        // A dropped connection, a timeout, 5xx or 429 while polling: the code is still good
        // until it expires, and the person may be approving right now. Keep polling (RFC 8628
        // §3.5 asks clients to back off: the interval grows, up to 60 s).
        if (ctx.clock.now() >= deadline) throw expired();
        ctx.logger.debug(`device code: ${e.message} Polling again.`);
        const retryAfterSec = e.retryAfterMs !== undefined ? Math.ceil(e.retryAfterMs / 1000) : 0;
        intervalSec = Math.min(60, Math.max(intervalSec, retryAfterSec));
        continue;
      }
      if (!(e instanceof IdentityProviderError)) throw e;
      if (e.error === "authorization_pending") {
        if (ctx.clock.now() >= deadline) throw expired();
        continue;
      }
      if (e.error === "slow_down") {
        intervalSec += 5;
        continue;
      }
      if (e.error === "expired_token" || e.error === "code_expired") throw expired();
      if (e.error === "authorization_declined" || e.error === "access_denied") {
        throw new AzkeepError(
          "cancelled",
          "The sign-in was declined on the device code page; nothing was saved.",
          {
            hint: "Run `azkeep login --use-device-code` again and approve the sign-in.",
            cause: e,
          },
        );
      }
      throw e;
    }
  }
}

function expired(): AzkeepError {
  return new AzkeepError(
    "cancelled",
    "The device code expired before the sign-in was approved; nothing was saved.",
    {
      hint: "Run `azkeep login --use-device-code` again and enter the new code in time.",
    },
  );
}

async function qrCode(text: string): Promise<string> {
  const qr = (await import("qrcode-terminal")).default;
  return new Promise((resolve) => qr.generate(text, { small: true }, (s) => resolve(s)));
}

/** ROPC: discouraged (fails with MFA, federation and personal accounts); kept for az parity. */
export async function passwordSignIn(
  ctx: Context,
  req: UserFlowRequest & { username: string; password: string },
): Promise<UserSignInResult> {
  const endpoint = tokenEndpoint(req.cloud, req.tenant);
  const body = await postForm(
    ctx,
    endpoint,
    {
      client_id: req.clientId,
      grant_type: "password",
      username: req.username,
      password: req.password,
      scope: withOidcScopes(req.scopes),
      client_info: "1",
      claims: claimsParameter(ctx.env, req.claims),
    },
    {
      login: userLoginCommand({ tenant: req.tenant, scopes: req.scopes }),
      headers: { "X-AnchorMailbox": `upn:${req.username}` },
      ...(req.signal ? { signal: req.signal } : {}),
    },
  );
  const token = tokenResultFrom(ctx, body, { tenant: req.tenant, scopes: req.scopes, url: endpoint });
  requireRefreshToken(token);
  return { token, username: usernameOf(token, req.username) };
}
