/**
 * The emulator's state: the seed, indexed for lookups, plus everything that changes while it
 * runs (refresh tokens, codes, sessions, consents, resource groups, faults, the request log,
 * token lifetimes, the clock offset). `reset()` returns it to the seed.
 */
import { createHash, randomBytes, randomUUID, X509Certificate } from "node:crypto";
import type {
  Seed,
  SeedApp,
  SeedManagedIdentity,
  SeedResourceGroup,
  SeedSubscription,
  SeedTenant,
  SeedUser,
} from "./seed.js";

/** Token and code lifetimes in seconds. */
export interface Lifetimes {
  accessToken: number;
  idToken: number;
  refreshToken: number;
  authCode: number;
  deviceCode: number;
  /** Polling interval a device code response tells the client. */
  deviceCodeInterval: number;
  managedIdentity: number;
  session: number;
}

export const DEFAULT_LIFETIMES: Lifetimes = {
  accessToken: 3600,
  idToken: 3600,
  refreshToken: 90 * 24 * 3600,
  authCode: 600,
  deviceCode: 900,
  deviceCodeInterval: 5,
  managedIdentity: 24 * 3600,
  session: 24 * 3600,
};

/** How a user proved who they are: `pwd`, plus `mfa` after the second factor. */
export type Amr = ("pwd" | "mfa")[];

export interface RefreshTokenRecord {
  userUpn: string;
  clientId: string;
  familyId: string | undefined;
  /** Tenant the grant was made in (its realm). */
  tenantId: string;
  amr: Amr;
  authTime: number;
  issuedAt: number;
  expiresAt: number;
}

export interface AuthCodeRecord {
  clientId: string;
  redirectUri: string;
  userUpn: string;
  tenantId: string;
  scope: string;
  nonce: string | undefined;
  codeChallenge: string | undefined;
  codeChallengeMethod: string | undefined;
  claims: string | undefined;
  amr: Amr;
  authTime: number;
  expiresAt: number;
  redeemed: boolean;
}

export interface DeviceCodeRecord {
  deviceCode: string;
  userCode: string;
  clientId: string;
  /** The tenant segment the code was requested at (`organizations`, a GUID, …). */
  tenantSegment: string;
  scope: string;
  claims: string | undefined;
  createdAt: number;
  expiresAt: number;
  status: "pending" | "approved" | "denied" | "redeemed";
  userUpn?: string;
  amr?: Amr;
}

export interface SessionRecord {
  userUpn: string;
  amr: Amr;
  authTime: number;
  expiresAt: number;
}

export type FaultType = "status" | "delay" | "reset" | "throttle";

export interface Fault {
  id: string;
  /** Endpoint name (see `ENDPOINTS`) or `*`. */
  endpoint: string;
  type: FaultType;
  /** HTTP status for `status` (default 503). */
  status?: number;
  /** Milliseconds for `delay` (then the request is served normally). */
  delayMs?: number;
  /** Seconds for `throttle` (HTTP 429 with Retry-After; default 1). */
  retryAfter?: number;
  /** How many matching requests it hits; omitted = every one until cleared. */
  remaining?: number;
}

export interface RequestRecord {
  time: string;
  method: string;
  endpoint: string;
  path: string;
  host: string;
  status: number;
  tenant?: string;
  grantType?: string;
  clientId?: string;
  fault?: FaultType;
}

export interface ClaimsChallenge {
  /** Principal the challenge applies to (UPN, object id or client id); undefined = everyone. */
  principal: string | undefined;
  tenant: string | undefined;
  /** Tokens issued before this instant (ms) are refused with the challenge. */
  since: number;
}

export type Principal =
  { kind: "user"; user: SeedUser } | { kind: "app"; app: SeedApp } | { kind: "mi"; mi: SeedManagedIdentity };

/** Endpoint names for request counting and fault injection. */
export const ENDPOINTS = [
  "openid-configuration",
  "keys",
  "instance-discovery",
  "userrealm",
  "authorize",
  "login",
  "token",
  "devicecode",
  "devicelogin",
  "logout",
  "userinfo",
  "arm-metadata",
  "tenants",
  "subscriptions",
  "subscription",
  "resourcegroups",
  "imds",
  "appservice",
  "other",
] as const;
export type EndpointName = (typeof ENDPOINTS)[number];

const MAX_LOG = 20_000;

function guidFrom(...parts: string[]): string {
  const h = createHash("sha256").update(parts.join("|")).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface CertInfo {
  pem: string;
  x5t: string;
  x5tS256: string;
}

export class World {
  readonly tenantsById = new Map<string, SeedTenant>();
  readonly tenantsByDomain = new Map<string, SeedTenant>();
  readonly usersByUpn = new Map<string, SeedUser>();
  readonly apps = new Map<string, SeedApp>();
  readonly certs = new Map<string, CertInfo[]>();
  /** user upn (lower) → tenant id → object id in that tenant. */
  readonly memberships = new Map<string, Map<string, string>>();
  readonly principalsByOid = new Map<string, Principal>();
  readonly managedIdentities: SeedManagedIdentity[];

  lifetimes: Lifetimes;
  clockOffsetMs = 0;
  readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  readonly authCodes = new Map<string, AuthCodeRecord>();
  readonly deviceCodes = new Map<string, DeviceCodeRecord>();
  readonly sessions = new Map<string, SessionRecord>();
  /** Pending sign-in flows of the HTML pages, by flow id. */
  readonly flows = new Map<string, unknown>();
  /** `${upn}|${clientId}` a user consented to. */
  readonly consents = new Set<string>();
  /** user upn (lower) → instant (ms) before which their grants are revoked. */
  readonly tokensValidFrom = new Map<string, number>();
  /** tenant id → MFA required (control API overrides the seed). */
  readonly mfaOverrides = new Map<string, boolean>();
  readonly resourceGroups = new Map<string, Map<string, SeedResourceGroup>>();
  faults: Fault[] = [];
  readonly log: RequestRecord[] = [];
  claimsChallenges: ClaimsChallenge[] = [];
  /** Access token `uti` → issue instant in ms (CAE challenges compare with sub-second precision). */
  readonly issued = new Map<string, number>();

  constructor(
    readonly seed: Seed,
    private readonly clock: () => number,
    private readonly initialLifetimes: Lifetimes,
  ) {
    this.lifetimes = { ...initialLifetimes };
    for (const t of seed.tenants) {
      this.tenantsById.set(t.id.toLowerCase(), t);
      for (const d of [t.domain, ...(t.domains ?? [])]) this.tenantsByDomain.set(d.toLowerCase(), t);
    }
    for (const u of seed.users) {
      const upn = u.upn.toLowerCase();
      this.usersByUpn.set(upn, u);
      const m = new Map<string, string>([[u.homeTenant, u.objectId]]);
      this.principalsByOid.set(u.objectId, { kind: "user", user: u });
      for (const g of u.guestIn ?? []) {
        const tenant = typeof g === "string" ? g : g.tenant;
        const oid = (typeof g === "string" ? undefined : g.objectId) ?? guidFrom("guest", u.objectId, tenant);
        m.set(tenant, oid);
        this.principalsByOid.set(oid, { kind: "user", user: u });
      }
      this.memberships.set(upn, m);
    }
    for (const a of seed.apps) {
      this.apps.set(a.clientId.toLowerCase(), a);
      this.principalsByOid.set(this.appObjectId(a), { kind: "app", app: a });
      this.certs.set(
        a.clientId.toLowerCase(),
        (a.certificates ?? []).map((c) => {
          const der = new X509Certificate(c.pem).raw;
          return {
            pem: c.pem,
            x5t: createHash("sha1").update(der).digest("base64url"),
            x5tS256: createHash("sha256").update(der).digest("base64url"),
          };
        }),
      );
    }
    this.managedIdentities = seed.managedIdentities ?? [];
    for (const mi of this.managedIdentities) this.principalsByOid.set(mi.objectId, { kind: "mi", mi });
    this.resetResourceGroups();
  }

  now(): number {
    return this.clock() + this.clockOffsetMs;
  }

  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  reset(): void {
    this.lifetimes = { ...this.initialLifetimes };
    this.clockOffsetMs = 0;
    this.refreshTokens.clear();
    this.authCodes.clear();
    this.deviceCodes.clear();
    this.sessions.clear();
    this.flows.clear();
    this.consents.clear();
    this.tokensValidFrom.clear();
    this.mfaOverrides.clear();
    this.faults = [];
    this.log.length = 0;
    this.claimsChallenges = [];
    this.issued.clear();
    this.resetResourceGroups();
  }

  private resetResourceGroups(): void {
    this.resourceGroups.clear();
    for (const s of this.seed.subscriptions) {
      const m = new Map<string, SeedResourceGroup>();
      for (const g of s.resourceGroups ?? [])
        m.set(g.name.toLowerCase(), { ...g, ...(g.tags ? { tags: { ...g.tags } } : {}) });
      this.resourceGroups.set(s.id, m);
    }
  }

  record(r: RequestRecord): void {
    this.log.push(r);
    if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
  }

  /** A GUID tenant id, a verified domain (case-insensitive) → the tenant. */
  tenant(idOrDomain: string): SeedTenant | undefined {
    const k = idOrDomain.toLowerCase();
    return this.tenantsById.get(k) ?? this.tenantsByDomain.get(k);
  }

  user(upnOrOid: string): SeedUser | undefined {
    const k = upnOrOid.toLowerCase();
    const byUpn = this.usersByUpn.get(k);
    if (byUpn) return byUpn;
    const p = this.principalsByOid.get(k);
    return p?.kind === "user" ? p.user : undefined;
  }

  app(clientId: string): SeedApp | undefined {
    return this.apps.get(clientId.toLowerCase());
  }

  appObjectId(a: SeedApp): string {
    return a.objectId ?? guidFrom("sp", a.clientId);
  }

  /** The user's object id in `tenantId`, or undefined when they are not a member or guest there. */
  userOid(user: SeedUser, tenantId: string): string | undefined {
    return this.memberships.get(user.upn.toLowerCase())?.get(tenantId);
  }

  userTenants(user: SeedUser): string[] {
    return [...(this.memberships.get(user.upn.toLowerCase())?.keys() ?? [])];
  }

  mfaRequired(user: SeedUser, tenantId: string): boolean {
    const override = this.mfaOverrides.get(tenantId);
    const tenantWide = override ?? this.tenantsById.get(tenantId)?.requireMfa ?? false;
    return tenantWide || (user.requireMfaIn ?? []).includes(tenantId);
  }

  /** Whether an app may be used in `tenantId` (its home, any tenant when multi-tenant or first-party). */
  appUsableIn(a: SeedApp, tenantId: string): boolean {
    return a.tenant === undefined || a.multiTenant === true || a.tenant === tenantId;
  }

  subscription(id: string): SeedSubscription | undefined {
    const k = id.toLowerCase();
    return this.seed.subscriptions.find((s) => s.id === k);
  }

  /** Identifiers a subscription's `access` list may name for this principal. */
  principalNames(p: Principal): string[] {
    switch (p.kind) {
      case "user":
        return [p.user.upn, ...(this.memberships.get(p.user.upn.toLowerCase())?.values() ?? [])];
      case "app":
        return [p.app.clientId, this.appObjectId(p.app)];
      case "mi":
        return [p.mi.clientId, p.mi.objectId, ...(p.mi.resourceId ? [p.mi.resourceId] : [])];
    }
  }

  canSee(p: Principal, s: SeedSubscription): boolean {
    const names = new Set(this.principalNames(p).map((n) => n.toLowerCase()));
    return s.access.some((a) => a === "*" || names.has(a.toLowerCase()));
  }

  /** Tenants a principal belongs to. */
  principalTenants(p: Principal): string[] {
    switch (p.kind) {
      case "user":
        return this.userTenants(p.user);
      case "app":
        return p.app.tenant ? [p.app.tenant] : [];
      case "mi":
        return [p.mi.tenant];
    }
  }

  randomToken(bytes = 32): string {
    return randomBytes(bytes).toString("base64url");
  }

  randomId(): string {
    return randomUUID();
  }
}
