/**
 * Client capabilities and claims challenges. Entra issues long-lived CAE tokens only to clients
 * that declare the `CP1` capability, so every request carries it (as az does) unless
 * `AZURE_IDENTITY_DISABLE_CP1` is set; a claims challenge from a resource is merged into it.
 */
import type { Env } from "../context.js";
import { UsageError } from "../errors.js";

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function merge(a: JsonObject, b: JsonObject): JsonObject {
  const out: JsonObject = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? merge(prev, v) : v;
  }
  return out;
}

/** Parses a claims challenge given as JSON or as base64(url) JSON (what resources send). */
export function parseClaims(claims: string): JsonObject {
  const text = claims.trim();
  const tryJson = (s: string): JsonObject | undefined => {
    try {
      const v: unknown = JSON.parse(s);
      return isObject(v) ? v : undefined;
    } catch {
      return undefined;
    }
  };
  const parsed = tryJson(text) ?? tryJson(Buffer.from(text, "base64").toString("utf8"));
  if (!parsed) {
    throw new UsageError("The claims challenge is neither JSON nor base64-encoded JSON.", {
      hint: "Pass the `claims` value from the WWW-Authenticate header as it is.",
    });
  }
  return parsed;
}

/** The `claims` parameter to send, or undefined when there is nothing to send. */
export function claimsParameter(env: Env, challenge?: string): string | undefined {
  let claims: JsonObject = {};
  if (!env.AZURE_IDENTITY_DISABLE_CP1) claims = { access_token: { xms_cc: { values: ["CP1"] } } };
  if (challenge) claims = merge(claims, parseClaims(challenge));
  return Object.keys(claims).length ? JSON.stringify(claims) : undefined;
}
