/**
 * The sealed store's contents and the port every other part of azkeep uses to read and change
 * them. `profile.json` holds no secrets; everything in `Secrets` is sealed in `tokens.sealed`.
 */
import type { Profile } from "../profile/types.js";
import type { CredentialBinding, SealedMirror } from "./integrity.js";

export type { CredentialBinding, SealedMirror } from "./integrity.js";

/** A refresh token: one per signed-in user and client; it serves every resource and tenant. */
export interface RefreshTokenEntry {
  /** `<uid>.<utid>` from `client_info`, as MSAL keys accounts. */
  homeAccountId: string;
  username: string;
  clientId: string;
  /** Authority host or issuer, e.g. `login.microsoftonline.com` or `https://issuer` (generic OIDC). */
  environment: string;
  /** Cloud name (`AzureCloud`, …) or `oidc:<issuer>`. */
  cloud: string;
  /** The user's home tenant. */
  homeTenantId: string;
  secret: string;
  familyId?: string;
  /** Epoch seconds. */
  lastModified: number;
  /** Where it was issued; set by the file store on the write that adds it (see integrity.ts). */
  bound?: CredentialBinding;
}

export interface AccessTokenEntry {
  /** `null` for service principals and managed identities. */
  homeAccountId: string | null;
  /** For service principals: the client id; for users: the username. */
  principal: string;
  clientId: string;
  environment: string;
  cloud: string;
  /** The tenant the token was issued for (`organizations` for the sign-in token). */
  tenantId: string;
  /** Space-joined scopes as returned by the token endpoint. */
  target: string;
  secret: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresOn: number;
  /** Epoch seconds; when the token should be refreshed early (`refresh_in`). */
  refreshOn?: number;
  /** Epoch seconds. */
  cachedAt: number;
}

export type ServicePrincipalCredential =
  | { kind: "secret"; secret: string }
  | { kind: "certificate"; certificatePem: string; sendX5c?: boolean }
  /** Re-read at every token request (workload identity). */
  | { kind: "federated-file"; path: string }
  | { kind: "federated-token"; token: string };

export interface ServicePrincipalEntry {
  clientId: string;
  tenantId: string;
  cloud: string;
  credential: ServicePrincipalCredential;
  /** Where it was issued; set by the file store on the write that adds it (see integrity.ts). */
  bound?: CredentialBinding;
}

export interface Secrets {
  version: 1;
  refreshTokens: RefreshTokenEntry[];
  accessTokens: AccessTokenEntry[];
  servicePrincipals: ServicePrincipalEntry[];
  /**
   * The agent's release secret (32 random bytes, base64): the log and policy MAC keys are
   * derived from it (HKDF). Kept here so that it is sealed with the store and survives
   * `store migrate`; created by the agent at its first unlock.
   */
  release?: {
    root: string;
    /**
     * The MAC of the last policy.json the agent verified (trust on first sight): once set, a
     * removed policy file is not taken as "the defaults" until the person confirms it.
     */
    policy?: string;
  };
  /** profile.json and config.json's protected sections as azkeep last wrote them (file store). */
  mirror?: SealedMirror;
  /**
   * The write generation: above the previous one on every seal, and never below the clock (ms).
   * The keyring and keyutils providers keep the highest written beside the key; a file older
   * than that is refused (rollback, docs/store.md).
   */
  generation?: number;
}

export function emptySecrets(): Secrets {
  return { version: 1, refreshTokens: [], accessTokens: [], servicePrincipals: [] };
}

export interface StoreState {
  profile: Profile;
  secrets: Secrets;
}

/** What protects the store, for `store status`, `doctor` and `account show`. */
export interface StoreStatus {
  /** `keyring`, `keyutils`, `passphrase`, `insecure-file`, `memory`, or `none` before the first write. */
  provider: string;
  configDir: string;
  files: { path: string; mode: string; exists: boolean }[];
  warnings: string[];
  /** The data key's id (also in tokens.sealed's header); absent before the first write. */
  keyId?: string;
  /** Whether the provider has the key now; `null` when not checked (a passphrase is not asked for). */
  keyAvailable?: boolean | null;
  /** What protects what, one entry per file, in words. */
  protection?: { file: string; holds: string; protectedBy: string }[];
  /** e.g. `AZKS v1, AES-256-GCM`. */
  format?: string;
}

export interface Store {
  readonly configDir: string;
  /** Reads `profile.json` without a lock; never sees a partial file. Missing → empty. */
  readProfile(): Promise<Profile>;
  /** Reads and unseals `tokens.sealed` without a lock. Missing → empty. */
  readSecrets(): Promise<Secrets>;
  /**
   * Read-modify-write under the cross-process lock: re-reads both files, lets `change` mutate
   * the state in place, then writes what changed (temp file → fsync → rename).
   */
  update<T>(change: (state: StoreState) => T | Promise<T>): Promise<T>;
  /**
   * Makes sure the next `update` can seal: opens the store and gets (or, on a first write,
   * chooses and creates) its key — asking for a passphrase now if one is needed. Sign-in calls
   * it before any interactive flow, so that a store that cannot be written fails before the
   * person approves a sign-in that would then be thrown away. Absent: nothing to prepare.
   */
  prepareWrite?(): Promise<void>;
  status(): Promise<StoreStatus>;
  /**
   * config.json as checked against the seal (file store): its protected sections (`cloud`) are
   * the ones azkeep wrote, or the read fails with `store_tampered`. Absent: read it plainly.
   */
  readSettings?(): Promise<Record<string, unknown>>;
  /**
   * Changes config.json under the store lock and config.json's lock, re-sealing the mirror of
   * its protected sections first (file store). Absent: `updateConfig` alone.
   */
  updateSettings?<T>(change: (config: Record<string, unknown>) => T | Promise<T>): Promise<T>;
}
