/**
 * Mints workload identity tokens (the JWTs GitHub Actions or Kubernetes hand a job) signed by
 * the default seed's federated issuer, for tests of federated service principal sign-in.
 */
import { randomUUID } from "node:crypto";
import { SignJWT, importJWK } from "jose";
import { DEFAULT_FEDERATED_ISSUER_PRIVATE_JWK } from "./default-keys.js";
import { DEFAULT_FEDERATED_ISSUER, DEFAULT_FEDERATED_SUBJECT, FEDERATED_AUDIENCE } from "./seed.js";

export interface FederatedTokenOptions {
  /** Default: the default seed's federated credential subject. */
  subject?: string;
  /** Default `api://AzureADTokenExchange`. */
  audience?: string | string[];
  /** Default: the default seed's issuer. */
  issuer?: string;
  /** Default 600 s. */
  lifetimeSeconds?: number;
  /** Signing key (private JWK, RS256); default: the default seed issuer's key. */
  privateJwk?: Record<string, unknown>;
  /** Current time in ms (default `Date.now()`), e.g. the emulator's advanced clock. */
  now?: number;
}

export async function mintFederatedToken(options: FederatedTokenOptions = {}): Promise<string> {
  const jwk = options.privateJwk ?? DEFAULT_FEDERATED_ISSUER_PRIVATE_JWK;
  const key = await importJWK(jwk as Parameters<typeof importJWK>[0], "RS256");
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const kid = typeof jwk.kid === "string" ? jwk.kid : undefined;
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", ...(kid ? { kid } : {}) })
    .setIssuer(options.issuer ?? DEFAULT_FEDERATED_ISSUER)
    .setSubject(options.subject ?? DEFAULT_FEDERATED_SUBJECT)
    .setAudience(options.audience ?? FEDERATED_AUDIENCE)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + (options.lifetimeSeconds ?? 600))
    .sign(key);
}
