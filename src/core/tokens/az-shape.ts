/**
 * The JSON of `az account get-access-token` (reference §2.4, §5.1), made from a token
 * response. Its own module, light on purpose: the agent lane (`cli/agent-lane.ts`) shapes the
 * agent's answer with it without loading the token policy.
 */
import { AzkeepError } from "../errors.js";
import type { TokenResponse } from "./policy.js";
import { formatExpiresOn } from "./time.js";

/** az's `get-access-token` JSON (keys are sorted by the formatter, as knack does). */
export interface AzAccessToken {
  accessToken: string;
  /** Naive local time, `YYYY-MM-DD HH:MM:SS.ffffff`. */
  expiresOn: string;
  /** Epoch seconds (an integer: Go unmarshals it into int64). */
  expires_on: number;
  /** Left out when `--tenant` is given. */
  subscription?: string;
  tenant: string;
  tokenType: string;
}

export function toAzShape(r: TokenResponse, tenantGiven: boolean): AzAccessToken {
  // az's own key order (what `--query @ -o table` shows); json/yaml/tsv sort them.
  const out: AzAccessToken = {
    tokenType: r.tokenType || "Bearer",
    accessToken: r.accessToken,
    expires_on: Math.floor(r.expiresOn),
    expiresOn: formatExpiresOn(r.expiresOn),
    tenant: r.tenant,
  };
  if (!tenantGiven) out.subscription = r.subscription;
  return out;
}

/** az: `--subscription` and `--tenant` together are a CLIError (exit 1), not a parser error. */
export function checkSubscriptionOrTenant(
  subscription: string | undefined,
  tenant: string | undefined,
): void {
  if (subscription && tenant) {
    throw new AzkeepError("bad_input", "Please specify only one of subscription and tenant, not both", {
      hint: "A subscription implies its tenant; pass --tenant alone for a tenant-level token.",
    });
  }
}
