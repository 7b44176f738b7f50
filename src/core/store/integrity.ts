/**
 * Nothing outside the seal steers a secret (issue 8).
 *
 * - **Bindings.** Every stored credential (refresh token, service-principal secret, certificate,
 *   federated token or token file) carries, inside `tokens.sealed`, the authority (scheme, host,
 *   tenant) and the cloud endpoints (authority, ARM, ARM audience) it was issued for. The token
 *   policy sends it only there (`checkBinding`), whatever `profile.json` or `config.json` say.
 * - **The sealed mirror.** `tokens.sealed` also holds a copy of `profile.json` and of the
 *   protected parts of `config.json` (`cloud`, `agent`, `store.mode`) as azkeep last wrote them. Every open compares
 *   the plain files with it: an edit made outside azkeep is `store_tampered` — one error naming
 *   what changed and what to run — and is never used. Because the mirror is inside the GCM
 *   blob, nobody without the store's key can make a change that passes.
 * - A crash between writing `tokens.sealed` and the plain file (the seal is always written
 *   first) leaves the plain file as it was before: its digest is kept as `previous`, and such a
 *   file is accepted (the mirror, the newer state, is what is used).
 *
 * Pure functions: no I/O here; `file-store.ts` calls them.
 */
import { createHash } from "node:crypto";
import { BUILTIN_CLOUDS, type Cloud, type CloudEndpoints } from "../clouds.js";
import { AzkeepError } from "../errors.js";
import type { Profile, SubscriptionEntry } from "../profile/types.js";
import type { RefreshTokenEntry, Secrets, ServicePrincipalEntry } from "./types.js";

/**
 * The parts of config.json whose integrity the seal guards: whole sections, or one field of a
 * section (`section.field`: `store` also holds the key record, which azkeep writes without
 * re-sealing). Other parts add theirs here.
 * - `cloud`: where credentials go (issue 8 item 1);
 * - `agent` (auto-start, idle and max lifetimes) and `store.mode` (agent-only): an outside edit
 *   that turns agent-only mode off, or keeps an auto-started agent unlocked longer, is named,
 *   not obeyed. Turning agent-only mode **on** is accepted from the file alone (it gives
 *   nothing away: `agent start --agent-only` writes it without the key when the key needs a
 *   passphrase); the next seal records it.
 */
export const PROTECTED_CONFIG_PATHS = ["cloud", "agent", "store.mode"] as const;
type ProtectedPath = (typeof PROTECTED_CONFIG_PATHS)[number];
/** Parts for which the file from before azkeep's last write is not accepted (see `verifyConfig`). */
const STRICT_PATHS: readonly ProtectedPath[] = ["agent", "store.mode"];

/** The endpoints a credential may be used with; compared field by field before each use. */
export type BoundEndpoints = Pick<
  CloudEndpoints,
  "activeDirectory" | "resourceManager" | "activeDirectoryResourceId" | "management"
>;

/** Where a credential was issued. Sealed with it; never read from a plain file. */
export interface CredentialBinding {
  /** Cloud name at sign-in (`AzureCloud`, a custom cloud, `oidc:<issuer>`). */
  cloud: string;
  /** `scheme://host[:port]` of the authority, lower case. */
  authority: string;
  /** The tenant it was issued in (users: their home tenant; the host is what binds them). */
  tenant: string;
  /** The cloud's endpoints at sign-in (absent for generic OIDC). */
  endpoints?: BoundEndpoints;
  /** How the binding was made: at sign-in, or when a 0.1 store was upgraded. */
  via: "sign-in" | "upgrade";
}

/** The plain files as azkeep last wrote them, sealed. */
export interface SealedMirror {
  version: 1;
  profile: Profile;
  /** config.json's protected parts (`PROTECTED_CONFIG_PATHS`); a missing one is `null`. */
  config: Record<string, unknown>;
  /** Digests of the files as they were before the last write (a crash between the two renames). */
  previous?: { profile?: string; config?: string };
}

type ConfigLike = Record<string, unknown>;

/** One protected part of a config.json object, normalised (absent, `direct`, `{}` → null). */
function protectedValue(config: ConfigLike, path: ProtectedPath): unknown {
  if (path === "store.mode")
    return (config.store as { mode?: unknown } | undefined)?.mode === "agent-only" ? "agent-only" : null;
  const v = config[path];
  if (v === null || v === undefined) return null;
  if (typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => x === undefined))
    return null;
  return v;
}

/** The protected part of a config.json object. */
export function protectedConfig(config: ConfigLike): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of PROTECTED_CONFIG_PATHS) out[p] = protectedValue(config, p);
  return out;
}

/** Whether the mirror guards every protected part (a seal from before one was added does not). */
export function mirrorCovers(mirror: SealedMirror): boolean {
  return PROTECTED_CONFIG_PATHS.every((p) => Object.hasOwn(mirror.config, p));
}

/**
 * What the file's protected view must equal: the sealed parts, where the mirror has them (a part
 * added since the seal was written is taken from the file until the next seal), with agent-only
 * mode turned on in the file accepted (stricter: it gives nothing away).
 */
function expectedView(mirror: SealedMirror, view: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of PROTECTED_CONFIG_PATHS)
    out[p] = Object.hasOwn(mirror.config, p) ? mirror.config[p] : view[p];
  if (view["store.mode"] === "agent-only") out["store.mode"] = "agent-only";
  return out;
}

/** JSON with sorted keys: whitespace and key order of a hand-formatted file do not matter. */
export function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`).join(",")}}`;
}

/**
 * Deep equality of two JSON values, ignoring key order and `undefined` members (what
 * `canonical(a) === canonical(b)` says, without building strings: the hot path's check).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let nx = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    nx++;
    if (!sameJson(x[k], y[k])) return false;
  }
  let ny = 0;
  for (const k in y) if (y[k] !== undefined) ny++;
  return nx === ny;
}

export function digest(value: unknown): string {
  return createHash("sha256").update(canonical(value)).digest("base64url");
}

/** An edit of a plain file made outside azkeep. */
export class TamperFound extends Error {
  constructor(
    readonly file: "profile.json" | "config.json",
    readonly what: string,
  ) {
    super(`${file} was changed outside azkeep (${what})`);
  }
}

const short = (s: unknown): string => {
  const t = typeof s === "string" ? s : JSON.stringify(s);
  return t === undefined ? "nothing" : t.length > 60 ? `${t.slice(0, 57)}…` : t;
};

function subLabel(e: SubscriptionEntry | undefined, i: number): string {
  if (!e || typeof e !== "object") return `entry ${i + 1}`;
  return `subscription '${short(e.name)}' of ${short(e.user?.name)}`;
}

/** Names what differs between the sealed profile and the file, in a few words. */
export function describeProfileChange(sealed: Profile, file: Profile | undefined): string {
  if (!file) return "it was removed";
  const a = sealed.subscriptions;
  const b = Array.isArray(file.subscriptions) ? file.subscriptions : [];
  const parts: string[] = [];
  if (a.length !== b.length) parts.push(`${a.length} accounts became ${b.length}`);
  for (let i = 0; i < Math.min(a.length, b.length) && parts.length < 3; i++) {
    const x = a[i] as unknown as Record<string, unknown>;
    const y = b[i] as unknown as Record<string, unknown>;
    if (canonical(x) === canonical(y)) continue;
    const keys = [...new Set([...Object.keys(x ?? {}), ...Object.keys(y ?? {})])].filter(
      (k) => canonical(x?.[k]) !== canonical(y?.[k]),
    );
    parts.push(
      `${subLabel(a[i], i)}: ${keys
        .slice(0, 3)
        .map((k) => `${k} ${short(x?.[k])} → ${short(y?.[k])}`)
        .join(", ")}`,
    );
  }
  if (parts.length === 0) parts.push("its content changed");
  return parts.join("; ");
}

interface CloudLike {
  name?: string;
  endpoints?: Record<string, unknown>;
}

/** Names what differs between the sealed config sections and the file's. */
export function describeConfigChange(sealed: Record<string, unknown>, file: Record<string, unknown>): string {
  const parts: string[] = [];
  const a = (sealed.cloud ?? {}) as { activeCloud?: string; customClouds?: CloudLike[] };
  const b = (file.cloud ?? {}) as { activeCloud?: string; customClouds?: CloudLike[] };
  if ((a.activeCloud ?? "AzureCloud") !== (b.activeCloud ?? "AzureCloud"))
    parts.push(
      `active cloud ${short(a.activeCloud ?? "AzureCloud")} → ${short(b.activeCloud ?? "AzureCloud")}`,
    );
  const ac = Array.isArray(a.customClouds) ? a.customClouds : [];
  const bc = Array.isArray(b.customClouds) ? b.customClouds : [];
  for (const c of bc) {
    const old = ac.find((o) => o?.name === c?.name);
    if (!old) parts.push(`custom cloud ${short(c?.name)} added`);
    else if (canonical(old) !== canonical(c)) {
      const fields = [...new Set([...Object.keys(old.endpoints ?? {}), ...Object.keys(c.endpoints ?? {})])]
        .filter((k) => canonical(old.endpoints?.[k]) !== canonical(c.endpoints?.[k]))
        .map((k) => `${k} ${short(old.endpoints?.[k])} → ${short(c.endpoints?.[k])}`);
      parts.push(`custom cloud ${short(c.name)}: ${fields.length ? fields.join(", ") : "changed"}`);
    }
  }
  for (const o of ac)
    if (!bc.some((c) => c?.name === o?.name)) parts.push(`custom cloud ${short(o?.name)} removed`);
  if (sealed["store.mode"] === "agent-only" && file["store.mode"] !== "agent-only")
    parts.push("agent-only mode turned off");
  if (canonical(sealed.agent ?? null) !== canonical(file.agent ?? null)) {
    const a = (sealed.agent ?? {}) as Record<string, unknown>;
    const b = (file.agent ?? {}) as Record<string, unknown>;
    const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .filter((k) => canonical(a[k]) !== canonical(b[k]))
      .map((k) => `agent.${k} ${short(a[k] ?? "unset")} → ${short(b[k] ?? "unset")}`);
    parts.push(fields.length ? fields.join(", ") : "the agent settings changed");
  }
  if (parts.length === 0) parts.push("its cloud settings changed");
  return parts.slice(0, 3).join("; ");
}

/**
 * Checks the plain files against the sealed mirror. Returns what to use: the mirror's content
 * when the file matches it or is the one from before an interrupted write; throws
 * `TamperFound` otherwise.
 */
export function verifyProfile(mirror: SealedMirror, file: Profile | undefined): Profile {
  // Missing (deleted, or moved aside as damaged): the sealed copy answers, and the next write
  // puts the file back. Nothing in a missing file can steer anything.
  if (file === undefined) return mirror.profile;
  if (sameJson(file, mirror.profile)) return mirror.profile;
  if (mirror.previous?.profile === digest(file)) return mirror.profile;
  throw new TamperFound("profile.json", describeProfileChange(mirror.profile, file));
}

export function verifyConfig(mirror: SealedMirror, config: ConfigLike): void {
  const view = protectedConfig(config);
  const expected = expectedView(mirror, view);
  if (sameJson(view, expected)) return;
  // The file as it was before azkeep's last write (a crash between the two renames) — but never
  // for the agent settings: "as before" would let an edit undo `agent start --agent-only` right
  // after it (their writers order the two files so that a crash leaves nothing to forgive, or
  // a file that `store repair` sets right).
  if (mirror.previous?.config === digest(view) && STRICT_PATHS.every((p) => sameJson(view[p], expected[p])))
    return;
  throw new TamperFound("config.json", describeConfigChange(expected, view));
}

/**
 * config.json with its protected parts as the seal has them (parts the seal does not cover yet,
 * and agent-only mode turned on in the file, as the file has them).
 */
export function withSealedSections<T extends ConfigLike>(config: T, mirror: SealedMirror): T {
  const out: ConfigLike = { ...config };
  const expected = expectedView(mirror, protectedConfig(config));
  for (const p of PROTECTED_CONFIG_PATHS) {
    const v = expected[p];
    if (p === "store.mode") {
      if (protectedValue(config, p) === v) continue;
      const store = { ...(config.store as Record<string, unknown> | undefined) };
      if (v === "agent-only") store.mode = v;
      else delete store.mode;
      out.store = store;
    } else if (v === null || v === undefined) delete out[p];
    else out[p] = structuredClone(v);
  }
  return out as T;
}

export function tamperedError(found: TamperFound[]): AzkeepError {
  const files = found.map((f) => f.file);
  const how = [
    files.includes("profile.json")
      ? "Change accounts only with `azkeep login`, `azkeep account set` and `azkeep logout`."
      : "",
    files.includes("config.json")
      ? "Change clouds only with `azkeep cloud register` / `cloud set`, and agent settings only with " +
        "`azkeep agent start --agent-only` / `--no-agent-only` / `--auto` / `--no-auto`."
      : "",
  ]
    .filter(Boolean)
    .join(" ");
  const names = files.join(" and ");
  return new AzkeepError(
    "store_tampered",
    `${names} ${files.length > 1 ? "were" : "was"} changed outside azkeep (${found
      .map((f) => (found.length > 1 ? `${f.file}: ${f.what}` : f.what))
      .join("; ")}); azkeep does not use ${files.length > 1 ? "them" : "it"} and sent nothing.`,
    {
      hint: `Undo the edit, or run \`azkeep store repair\` to rewrite ${names} from the sealed copy. ${how}`,
      details: { files },
    },
  );
}

// ---------------------------------------------------------------- bindings

/** `scheme://host[:port]` of a URL, lower case; the input itself when it is not a URL. */
export function origin(url: string): string {
  try {
    return new URL(url).origin.toLowerCase();
  } catch {
    return url.toLowerCase();
  }
}

const norm = (s: string | undefined): string | undefined => s?.replace(/\/+$/, "").toLowerCase();

export function boundEndpoints(cloud: Cloud): BoundEndpoints {
  const e = cloud.endpoints;
  return {
    activeDirectory: e.activeDirectory,
    resourceManager: e.resourceManager,
    activeDirectoryResourceId: e.activeDirectoryResourceId,
    ...(e.management ? { management: e.management } : {}),
  };
}

export function bindingFor(cloud: Cloud, tenant: string, via: CredentialBinding["via"]): CredentialBinding {
  return {
    cloud: cloud.name,
    authority: origin(cloud.endpoints.activeDirectory),
    tenant,
    endpoints: boundEndpoints(cloud),
    via,
  };
}

type CloudLookup = (name: string) => Cloud | undefined;

/** Looks a cloud up in config.json's `cloud` section (already checked against the seal). */
export function cloudLookup(config: ConfigLike): CloudLookup {
  const custom = ((config.cloud as { customClouds?: Cloud[] } | undefined)?.customClouds ?? []).filter(
    (c) => c && typeof c.name === "string" && c.endpoints && typeof c.endpoints.activeDirectory === "string",
  );
  return (name) => {
    const key = name.toLowerCase();
    return (
      BUILTIN_CLOUDS.find((c) => c.name.toLowerCase() === key) ??
      custom.find((c) => c.name.toLowerCase() === key)
    );
  };
}

/**
 * Binds every credential that is not bound yet to the cloud it names. A refresh token records
 * the authority host it was issued by (`environment`); if the cloud config.json names now has
 * another authority, the binding keeps the recorded host, so that the token is refused rather
 * than sent to the new one. Returns how many were bound.
 */
export function bindUnbound(secrets: Secrets, lookup: CloudLookup, via: CredentialBinding["via"]): number {
  let n = 0;
  for (const rt of secrets.refreshTokens) {
    if (rt.bound) continue;
    rt.bound = bindRefreshToken(rt, lookup, via);
    n++;
  }
  for (const sp of secrets.servicePrincipals) {
    if (sp.bound) continue;
    const cloud = lookup(sp.cloud);
    const recorded = secrets.accessTokens.find(
      (a) =>
        a.homeAccountId === null &&
        a.clientId.toLowerCase() === sp.clientId.toLowerCase() &&
        a.cloud === sp.cloud,
    )?.environment;
    if (cloud) {
      const b = bindingFor(cloud, sp.tenantId, via);
      // An access token got earlier names the host that really issued for this principal.
      if (recorded && recorded.toLowerCase() !== new URL(b.authority).host)
        b.authority = `unknown://${recorded}`;
      sp.bound = b;
    } else sp.bound = { cloud: sp.cloud, authority: "unknown://", tenant: sp.tenantId, via };
    n++;
  }
  return n;
}

function bindRefreshToken(
  rt: RefreshTokenEntry,
  lookup: CloudLookup,
  via: CredentialBinding["via"],
): CredentialBinding {
  if (rt.cloud.startsWith("oidc:")) {
    const issuer = rt.cloud.slice("oidc:".length);
    return { cloud: rt.cloud, authority: origin(issuer), tenant: rt.homeTenantId, via };
  }
  const cloud = lookup(rt.cloud);
  if (!cloud)
    return { cloud: rt.cloud, authority: `unknown://${rt.environment}`, tenant: rt.homeTenantId, via };
  const b = bindingFor(cloud, rt.homeTenantId, via);
  let host: string;
  try {
    host = new URL(b.authority).host;
  } catch {
    host = b.authority;
  }
  if (rt.environment && rt.environment.toLowerCase() !== host) b.authority = `unknown://${rt.environment}`;
  return b;
}

/**
 * Before a credential is sent: the cloud it is about to be sent with must be the one it was
 * issued for (authority, ARM, ARM audience). Unbound credentials (the memory store) pass.
 */
export function checkBinding(
  cred: Pick<RefreshTokenEntry, "bound"> | Pick<ServicePrincipalEntry, "bound">,
  cloud: Cloud,
  who: string,
): void {
  const b = cred.bound;
  if (!b) return;
  const e = cloud.endpoints;
  const diffs: string[] = [];
  const was = b.authority.replace(/^unknown:\/\//, "");
  if (origin(e.activeDirectory) !== b.authority)
    diffs.push(`authority ${origin(e.activeDirectory)} (was ${was})`);
  if (b.endpoints) {
    for (const k of [
      "activeDirectory",
      "resourceManager",
      "activeDirectoryResourceId",
      "management",
    ] as const) {
      if (k === "activeDirectory" && diffs.length) continue;
      if (b.endpoints[k] !== undefined && e[k] !== undefined && norm(b.endpoints[k]) !== norm(e[k]))
        diffs.push(`${k} ${e[k]} (was ${b.endpoints[k]})`);
    }
  }
  if (diffs.length === 0) return;
  throw new AzkeepError(
    "auth_required",
    `The sign-in of ${who} was issued elsewhere than cloud '${cloud.name}' now says (${diffs.join(", ")}); azkeep sends a credential only where it was issued, and sent nothing.`,
    {
      hint: `Run \`azkeep login\` again in cloud '${cloud.name}' to sign in there, or restore the cloud's endpoints.`,
      details: { cloud: cloud.name, boundCloud: b.cloud },
    },
  );
}
