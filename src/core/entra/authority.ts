/**
 * Entra ID authorities and endpoints. Entra is not discovered per request: its endpoint paths
 * are fixed, and skipping discovery saves a round trip on every refresh (the hot path).
 */
import type { Cloud } from "../clouds.js";

/** The tenant az uses when none is given: any work or school account (not personal MSAs). */
export const ORGANIZATIONS = "organizations";

/** Authority host without a trailing slash, lower-cased (as MSAL normalises it). */
export function authorityHost(cloud: Cloud): string {
  return cloud.endpoints.activeDirectory.replace(/\/+$/, "").toLowerCase();
}

/** ADFS (Azure Stack) authorities end in `/adfs` and take no tenant segment. */
export function isAdfs(cloud: Cloud): boolean {
  return /\/adfs$/i.test(authorityHost(cloud));
}

/**
 * `https://login.microsoftonline.com/<tenant>`; for ADFS the tenant is dropped, because ADFS
 * has a single realm (why: MSAL does the same, reference §3.1).
 */
export function authority(cloud: Cloud, tenant: string): string {
  const host = authorityHost(cloud);
  return isAdfs(cloud) ? host : `${host}/${encodeURIComponent(tenant || ORGANIZATIONS)}`;
}

/** ADFS only has the v1-style `oauth2/token` paths; Entra has the v2.0 ones. */
function v2(cloud: Cloud): string {
  return isAdfs(cloud) ? "oauth2" : "oauth2/v2.0";
}

export function tokenEndpoint(cloud: Cloud, tenant: string): string {
  return `${authority(cloud, tenant)}/${v2(cloud)}/token`;
}

export function authorizeEndpoint(cloud: Cloud, tenant: string): string {
  return `${authority(cloud, tenant)}/${v2(cloud)}/authorize`;
}

export function deviceCodeEndpoint(cloud: Cloud, tenant: string): string {
  return `${authority(cloud, tenant)}/${v2(cloud)}/devicecode`;
}

export function openidConfigurationUrl(cloud: Cloud, tenant: string): string {
  return isAdfs(cloud)
    ? `${authority(cloud, tenant)}/.well-known/openid-configuration`
    : `${authority(cloud, tenant)}/v2.0/.well-known/openid-configuration`;
}

/** The `environment` field of cache entries: the authority's host name (MSAL's key part). */
export function environment(cloud: Cloud): string {
  try {
    return new URL(cloud.endpoints.activeDirectory).host.toLowerCase();
  } catch {
    return cloud.endpoints.activeDirectory;
  }
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuid(s: string): boolean {
  return GUID.test(s);
}

/** A tenant as a user may type it: a GUID, a domain (`contoso.com`), `organizations`, `common`. */
export function isValidTenant(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,253}$/.test(s);
}
