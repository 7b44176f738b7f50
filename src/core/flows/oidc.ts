/**
 * Sign-in to any standards-compliant OpenID provider (`azkeep login --authority … --client-id …`)
 * through openid-client: discovery, authorization code + PKCE with the loopback listener (or
 * the device authorization grant), id-token validation (issuer, audience, nonce, signature),
 * and refresh. No subscription discovery: the refresh token is kept for the issuer.
 */
import type * as OpenIdClient from "openid-client";
import type { Context } from "../context.js";
import { AzkeepError, IdentityProviderError, NetworkError, UsageError } from "../errors.js";
import type { Store } from "../store/types.js";
import { awaitAuthorizationResponse } from "./interactive.js";
import { startLoopback } from "./loopback.js";
import type { TokenResult } from "./token.js";

export interface OidcLoginRequest {
  issuer: string;
  clientId: string;
  /** Default `openid profile offline_access`. */
  scopes?: string[];
  deviceCode?: boolean;
  port?: number;
  noBrowser?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const OIDC_CLOUD_PREFIX = "oidc:";

function parseIssuer(issuer: string): URL {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new UsageError(`--authority '${issuer}' is not a URL.`, {
      hint: "Pass the provider's issuer, e.g. https://accounts.example.com.",
    });
  }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new UsageError(
      `--authority must use https (plain http only on this machine's loopback): ${issuer}`,
    );
  }
  return url;
}

type Client = typeof OpenIdClient;

/** Maps openid-client's errors to azkeep's, so the frame prints one clear line. */
function mapError(client: Client, e: unknown, issuer: string): unknown {
  if (e instanceof AzkeepError) return e;
  if ((e as Error).name === "AbortError") return e;
  if (e instanceof client.ResponseBodyError) {
    return new IdentityProviderError(e.error, e.error_description ?? e.error, {
      status: e.status,
      ...(e.error === "invalid_grant"
        ? { code: "auth_required" as const, hint: `Run \`azkeep login --authority ${issuer} …\` again.` }
        : {}),
    });
  }
  if (e instanceof client.AuthorizationResponseError) {
    return new IdentityProviderError(e.error, e.error_description ?? e.error, {
      ...(e.error === "access_denied" ? { code: "cancelled" as const } : {}),
      hint: "Run the login command again and accept the requested permissions.",
    });
  }
  const err = e as { code?: string; message?: string; cause?: unknown };
  if (
    err.code === "OAUTH_RESPONSE_IS_NOT_JSON" ||
    err.code === "OAUTH_RESPONSE_IS_NOT_CONFORM" ||
    err.code === "OAUTH_INVALID_RESPONSE"
  ) {
    return new NetworkError(
      `The OpenID provider ${issuer} gave an answer that cannot be used: ${err.message ?? ""}`,
      {
        cause: e,
        hint: "Check --authority: it must be the provider's issuer URL.",
      },
    );
  }
  if (e instanceof TypeError || err.code === "ECONNREFUSED" || err.code === "OAUTH_TIMEOUT") {
    return new NetworkError(`Cannot reach the OpenID provider ${issuer}.`, {
      cause: e,
      hint: "Check --authority, the network, and HTTPS_PROXY / NODE_EXTRA_CA_CERTS.",
    });
  }
  return new AzkeepError("auth_failed", `Sign-in to ${issuer} failed: ${err.message ?? String(e)}`, {
    cause: e,
  });
}

export async function oidcLogin(
  ctx: Context,
  store: Store,
  req: OidcLoginRequest,
): Promise<Record<string, unknown>> {
  const issuerUrl = parseIssuer(req.issuer);
  const client = await import("openid-client");
  const scopes = req.scopes?.length ? req.scopes : ["openid", "profile", "offline_access"];
  const scope = scopes.join(" ");
  const insecure = issuerUrl.protocol === "http:";
  let tokens: Awaited<ReturnType<Client["clientCredentialsGrant"]>>;
  let config: InstanceType<Client["Configuration"]>;
  try {
    config = await client.discovery(issuerUrl, req.clientId, undefined, client.None(), {
      [client.customFetch]: (url, options) => ctx.fetch(url, options as RequestInit),
      ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
    });
    if (req.deviceCode) {
      const dc = await client.initiateDeviceAuthorization(config, { scope });
      const uri = dc.verification_uri_complete ?? dc.verification_uri;
      ctx.progress.message(
        `To sign in, use a web browser to open the page ${dc.verification_uri} and enter the code ${dc.user_code} to authenticate.`,
      );
      if (ctx.progress.terminal) {
        // Only on a terminal (see Progress.terminal); the line above says it all for a log.
        const qr = (await import("qrcode-terminal")).default;
        ctx.progress.message(await new Promise<string>((r) => qr.generate(uri, { small: true }, r)));
      }
      tokens = await client.pollDeviceAuthorizationGrant(
        config,
        dc,
        undefined,
        req.signal ? { signal: req.signal } : {},
      );
    } else {
      const verifier = client.randomPKCECodeVerifier();
      const challenge = await client.calculatePKCECodeChallenge(verifier);
      const state = client.randomState();
      const nonce = client.randomNonce();
      // RFC 8252 §7.3: the IP literal; generic providers port-match loopback redirects by it.
      const listener = await startLoopback({
        state,
        ...(req.port === undefined ? {} : { port: req.port }),
        redirectHost: "127.0.0.1",
        redirectPath: "/",
      });
      try {
        const url = client.buildAuthorizationUrl(config, {
          redirect_uri: listener.redirectUri,
          scope,
          state,
          nonce,
          code_challenge: challenge,
          code_challenge_method: "S256",
          ...(scopes.includes("offline_access") ? { prompt: "consent" } : {}),
        });
        const params = await awaitAuthorizationResponse(ctx, {
          authorizeUrl: url.href,
          listener,
          state,
          ...(req.noBrowser ? { noBrowser: true } : {}),
          ...(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs }),
          ...(req.signal ? { signal: req.signal } : {}),
        });
        const callback = new URL(listener.redirectUri);
        callback.search = params.toString();
        try {
          tokens = await client.authorizationCodeGrant(
            config,
            callback,
            {
              pkceCodeVerifier: verifier,
              expectedState: state,
              expectedNonce: nonce,
              idTokenExpected: scopes.includes("openid"),
            },
            { redirect_uri: listener.redirectUri },
          );
        } catch (e) {
          listener.respond({
            ok: false,
            title: "Sign-in failed",
            message: "See the terminal for what to do next.",
          });
          throw e;
        }
        listener.respond({
          ok: true,
          title: "You have signed in to azkeep",
          message: "You can close this window and go back to the terminal.",
        });
      } finally {
        await listener.close();
      }
    }
  } catch (e) {
    throw mapError(client, e, req.issuer);
  }
  const claims = tokens.claims();
  const sub = typeof claims?.sub === "string" ? claims.sub : undefined;
  const username =
    (typeof claims?.preferred_username === "string" && claims.preferred_username) ||
    (typeof claims?.email === "string" && claims.email) ||
    sub ||
    req.clientId;
  const issuer = config.serverMetadata().issuer;
  const nowSec = Math.floor(ctx.clock.now() / 1000);
  const expiresOn = nowSec + (tokens.expiresIn() ?? 3600);
  const cloud = `${OIDC_CLOUD_PREFIX}${issuer}`;
  await store.update((state) => {
    if (tokens.refresh_token) {
      state.secrets.refreshTokens = state.secrets.refreshTokens.filter(
        (r) => !(r.cloud === cloud && r.clientId === req.clientId && r.username === username),
      );
      state.secrets.refreshTokens.push({
        homeAccountId: `${sub ?? username}.${issuer}`,
        username,
        clientId: req.clientId,
        environment: issuer,
        cloud,
        homeTenantId: issuer,
        secret: tokens.refresh_token,
        lastModified: nowSec,
      });
    }
    state.secrets.accessTokens = state.secrets.accessTokens.filter(
      (a) => !(a.cloud === cloud && a.clientId === req.clientId && a.principal === username),
    );
    state.secrets.accessTokens.push({
      homeAccountId: `${sub ?? username}.${issuer}`,
      principal: username,
      clientId: req.clientId,
      environment: issuer,
      cloud,
      tenantId: issuer,
      target: tokens.scope ?? scope,
      secret: tokens.access_token,
      tokenType: tokens.token_type || "Bearer",
      expiresOn,
      cachedAt: nowSec,
    });
  });
  return {
    issuer,
    clientId: req.clientId,
    user: { name: username, type: "user" },
    subject: sub ?? null,
    scope: tokens.scope ?? scope,
    expiresOn,
    refreshToken: tokens.refresh_token ? "stored (sealed)" : "none issued",
  };
}

/** Refreshes a generic OIDC sign-in's token (discovery, then the refresh grant). */
export async function oidcRefresh(
  ctx: Context,
  req: { issuer: string; clientId: string; refreshToken: string; scopes?: string[] },
): Promise<TokenResult> {
  const issuerUrl = parseIssuer(req.issuer);
  const client = await import("openid-client");
  try {
    const config = await client.discovery(issuerUrl, req.clientId, undefined, client.None(), {
      [client.customFetch]: (url, options) => ctx.fetch(url, options as RequestInit),
      ...(issuerUrl.protocol === "http:" ? { execute: [client.allowInsecureRequests] } : {}),
    });
    const t = await client.refreshTokenGrant(
      config,
      req.refreshToken,
      req.scopes?.length ? { scope: req.scopes.join(" ") } : undefined,
    );
    const nowSec = Math.floor(ctx.clock.now() / 1000);
    const claims = t.claims();
    const result: TokenResult = {
      accessToken: t.access_token,
      tokenType: t.token_type || "Bearer",
      expiresOn: nowSec + (t.expiresIn() ?? 3600),
      scope: t.scope ?? (req.scopes ?? []).join(" "),
      tenantId: config.serverMetadata().issuer,
    };
    if (t.refresh_token) result.refreshToken = t.refresh_token;
    if (claims) result.idTokenClaims = { ...claims };
    return result;
  } catch (e) {
    throw mapError(client, e, req.issuer);
  }
}
