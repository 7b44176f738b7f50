/**
 * `azkeep store repair`: recovers what a lost or damaged plain file took away, from what the
 * seal still holds. Loaded only by that command.
 *
 * - `config.json` lost, or moved aside for its shape: the key id is in tokens.sealed's header,
 *   so each key provider usable here is asked for that key id; a key counts as found only when
 *   it opens the file (GCM authenticates it). Nothing is written unless a key is found.
 * - `profile.json` lost or damaged: every identity with a credential in the seal (a user's
 *   refresh token, a service principal's credential) gets its tenant-level account entry back;
 *   `azkeep account list --refresh` then finds the subscriptions again.
 */
import { TENANT_LEVEL_ACCOUNT_NAME, type Profile, type SubscriptionEntry } from "../profile/types.js";
import type { Context } from "../context.js";
import { AzkeepError } from "../errors.js";
import type { KeyProvider, KeyRecord, ProviderName } from "./provider.js";
import { keyCheckValue, unseal } from "./sealed.js";
import type { Secrets } from "./types.js";

export interface RepairReport {
  /** `kept`: config.json named the key; `rebuilt`: the key was found again in `keyFoundIn`. */
  config: "kept" | "rebuilt" | "no store";
  keyFoundIn?: ProviderName;
  /** Where a config.json of the wrong shape or bad JSON was moved. */
  configMovedTo?: string;
  /** Where a damaged profile.json was moved. */
  profileMovedTo?: string;
  /**
   * Files rewritten from the copy sealed in tokens.sealed (profile.json, config.json's `cloud`
   * section): an edit made outside azkeep undone. Present when the seal has that copy.
   */
  restoredFromSeal?: string[];
  /**
   * `--accept-rollback`: tokens.sealed was older than the generation its key provider recorded
   * (`generation`, `recorded`); it was sealed again as the newest.
   */
  rollbackAccepted?: { generation: number; recorded: number };
  /** Account entries added back from the sealed credentials (a store without the sealed copy). */
  accountsAdded: { user: string; type: "user" | "servicePrincipal"; tenantId: string; cloudName: string }[];
  next: string;
}

/** Asks each usable provider for key `kid` and keeps the one that opens `sealed`. */
export async function findKey(
  ctx: Context,
  sealed: Buffer,
  kid: string,
  candidates: { name: ProviderName; load: () => Promise<KeyProvider> }[],
): Promise<{ record: KeyRecord; key: Uint8Array }> {
  const opens = (k: Uint8Array) => {
    try {
      unseal(sealed, () => k);
      return true;
    } catch {
      return false;
    }
  };
  const reasons: string[] = [];
  for (const c of candidates) {
    const probe: KeyRecord = { provider: c.name, keyId: kid, keyCheck: "", createdAt: "" };
    if (c.name === "passphrase") probe.scrypt = { N: 2 ** 15, r: 8, p: 1 };
    try {
      const key = await (await c.load()).getKey(probe, opens);
      if (key && opens(key)) {
        const record: KeyRecord = {
          ...probe,
          keyCheck: keyCheckValue(key),
          createdAt: new Date(ctx.clock.now()).toISOString(),
        };
        return { record, key };
      }
      reasons.push(`${c.name}: no key ${kid}`);
    } catch (e) {
      if (!(e instanceof AzkeepError)) throw e;
      reasons.push(`${c.name}: ${e.message}`);
    }
  }
  throw new AzkeepError(
    "store_unavailable",
    `No key provider here holds the key ${kid} that sealed tokens.sealed; nothing was changed:\n  ${reasons.join("\n  ")}`,
    {
      hint:
        "If it was sealed with a passphrase, set AZKEEP_PASSPHRASE_FILE (or run on a terminal) and run `azkeep store repair` again; " +
        "for keyutils run it in the session that signed in. If the key is lost, so are the tokens: sign in again with `azkeep login`.",
    },
  );
}

/**
 * Adds a tenant-level entry for every identity with a credential in `secrets` that `profile`
 * does not list (in place); returns what it added.
 */
export function restoreAccounts(profile: Profile, secrets: Secrets): RepairReport["accountsAdded"] {
  const listed = new Set(
    profile.subscriptions.map((e) => `${e.user.type}|${e.user.name.toLowerCase()}|${e.environmentName}`),
  );
  const added: SubscriptionEntry[] = [];
  const add = (name: string, type: "user" | "servicePrincipal", tenantId: string, cloud: string) => {
    const id = `${type}|${name.toLowerCase()}|${cloud}`;
    // Generic OpenID providers keep no account entries; identities listed already stay as they are.
    if (listed.has(id) || cloud.startsWith("oidc:") || !tenantId) return;
    listed.add(id);
    added.push({
      id: tenantId,
      name: TENANT_LEVEL_ACCOUNT_NAME,
      state: "Enabled",
      user: { name, type },
      isDefault: false,
      tenantId,
      environmentName: cloud,
      homeTenantId: tenantId,
    });
  };
  for (const rt of secrets.refreshTokens) add(rt.username, "user", rt.homeTenantId, rt.cloud);
  for (const sp of secrets.servicePrincipals) add(sp.clientId, "servicePrincipal", sp.tenantId, sp.cloud);
  if (added[0] && !profile.subscriptions.some((e) => e.isDefault)) added[0].isDefault = true;
  profile.subscriptions.push(...added);
  return added.map((e) => ({
    user: e.user.name,
    type: e.user.type,
    tenantId: e.tenantId,
    cloudName: e.environmentName,
  }));
}
