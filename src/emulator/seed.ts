/**
 * The emulator's world: tenants, users, applications (service principals), managed
 * identities, subscriptions and resource groups. `DEFAULT_SEED` is what `azkeep emulator start`
 * serves without `--seed`; `parseSeed` checks a seed read from JSON and names the first problem.
 */
import { DEFAULT_FEDERATED_ISSUER_PRIVATE_JWK, DEFAULT_SP_CERT_PEM } from "./default-keys.js";

export interface SeedTenant {
  /** Tenant GUID. */
  id: string;
  /** The default domain, e.g. `contoso.onmicrosoft.com`. */
  domain: string;
  displayName: string;
  /** More verified domains that also resolve to this tenant. */
  domains?: string[];
  /** Every user needs multi-factor authentication to get a token in this tenant. */
  requireMfa?: boolean;
  /** ISO country code shown by ARM `/tenants` (default `US`). */
  countryCode?: string;
}

export interface SeedGuestMembership {
  tenant: string;
  /** The guest's object id in that tenant (default: derived from the user and the tenant). */
  objectId?: string;
}

export interface SeedUser {
  /** User principal name, the sign-in name (case-insensitive). */
  upn: string;
  password: string;
  /** Object id in the home tenant. */
  objectId: string;
  homeTenant: string;
  displayName?: string;
  /** Tenants the user is a guest in (tenant ids or `{ tenant, objectId }`). */
  guestIn?: (string | SeedGuestMembership)[];
  /** Tenants where this user must do multi-factor authentication. */
  requireMfaIn?: string[];
  /** The one-time code the sign-in page's MFA step accepts (default `123456`). */
  mfaCode?: string;
}

export interface SeedSecret {
  value: string;
  /** ISO date after which the secret is rejected (AADSTS7000222). */
  expiresAt?: string;
}

export interface SeedCertificate {
  /** The certificate (PEM); its SHA-1 and SHA-256 thumbprints identify it in `x5t` / `x5t#S256`. */
  pem: string;
}

export interface SeedFederatedCredential {
  name?: string;
  issuer: string;
  subject: string;
  /** Default `["api://AzureADTokenExchange"]`, as Entra's. */
  audiences?: string[];
}

export interface SeedApp {
  clientId: string;
  displayName: string;
  /** Home tenant. Omitted: a Microsoft first-party app, usable in every tenant. */
  tenant?: string;
  /** Usable in tenants other than its home tenant. */
  multiTenant?: boolean;
  /** A public client (no secret): device code, browser, ROPC. */
  publicClient?: boolean;
  /** Users never see a consent page for it (first-party apps). */
  preConsented?: boolean;
  /** FOCI family: refresh tokens are shared by the apps of a family (`"1"` for Microsoft's). */
  familyId?: string;
  /** Redirect URIs besides the loopback ones every public client may use. */
  redirectUris?: string[];
  secrets?: SeedSecret[];
  certificates?: SeedCertificate[];
  federatedCredentials?: SeedFederatedCredential[];
  /** Object id of its service principal (default: derived from the client id). */
  objectId?: string;
  /** App roles granted to its service principal, per resource (the `roles` claim). */
  appRoles?: Record<string, string[]>;
  /** Application ID URIs, so other apps can ask for tokens to it (`api://…/.default`). */
  identifierUris?: string[];
}

export interface SeedManagedIdentity {
  clientId: string;
  objectId: string;
  /** ARM resource id of a user-assigned identity. */
  resourceId?: string;
  tenant: string;
  type: "system" | "user";
}

export interface SeedResourceGroup {
  name: string;
  location: string;
  tags?: Record<string, string>;
}

export type SubscriptionState = "Enabled" | "Disabled" | "Warned" | "PastDue" | "Deleted";

export interface SeedSubscription {
  id: string;
  displayName: string;
  /** Default `Enabled`. */
  state?: SubscriptionState;
  /** Home tenant. */
  tenant: string;
  managedByTenants?: string[];
  /** Who can see it: user UPNs or object ids, app client ids, managed identity client ids; `*` = everyone. */
  access: string[];
  resourceGroups?: SeedResourceGroup[];
}

/** A workload identity issuer (GitHub Actions, Kubernetes, …) whose tokens federated credentials trust. */
export interface SeedFederatedIssuer {
  issuer: string;
  /** Its public keys (JWKS). */
  jwks: { keys: Record<string, unknown>[] };
}

export interface Seed {
  tenants: SeedTenant[];
  users: SeedUser[];
  apps: SeedApp[];
  managedIdentities?: SeedManagedIdentity[];
  subscriptions: SeedSubscription[];
  federatedIssuers?: SeedFederatedIssuer[];
  /** Resource identifiers accepted in scopes besides Azure's well-known ones. */
  resources?: string[];
}

/** The Azure CLI's public client id; accepted in every tenant. */
export const AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/** Azure PowerShell's public client id (FOCI family 1, like the CLI). */
export const AZURE_POWERSHELL_CLIENT_ID = "1950a258-227b-4e31-a9cf-717495945fc2";

export const DEFAULT_FEDERATED_ISSUER = "https://federated.emulator.azkeep.test";
export const DEFAULT_FEDERATED_SUBJECT = "repo:azkeep/azkeep:ref:refs/heads/main";
export const FEDERATED_AUDIENCE = "api://AzureADTokenExchange";

function publicJwk(jwk: Record<string, unknown>): Record<string, unknown> {
  const { kty, n, e, kid, alg, use } = jwk;
  return { kty, n, e, kid, alg, use };
}

/**
 * The built-in world. Contoso is alice's home; she is a guest in Fabrikam (bob's home), in
 * Woodgrove (which requires MFA) and in Tailspin (no subscriptions). Contoso has a disabled
 * subscription, one managed by Fabrikam (Lighthouse). The service principal `azkeep-ci` signs
 * in with a secret, the certificate in `default-keys.ts`, or a federated token.
 */
export const DEFAULT_SEED: Seed = {
  tenants: [
    { id: "11111111-1111-1111-1111-111111111111", domain: "contoso.onmicrosoft.com", displayName: "Contoso" },
    {
      id: "22222222-2222-2222-2222-222222222222",
      domain: "fabrikam.onmicrosoft.com",
      displayName: "Fabrikam",
    },
    {
      id: "33333333-3333-3333-3333-333333333333",
      domain: "woodgrove.onmicrosoft.com",
      displayName: "Woodgrove (MFA required)",
      requireMfa: true,
    },
    {
      id: "44444444-4444-4444-4444-444444444444",
      domain: "tailspin.onmicrosoft.com",
      displayName: "Tailspin (no subscriptions)",
    },
  ],
  users: [
    {
      upn: "alice@contoso.onmicrosoft.com",
      password: "alice-Passw0rd!",
      objectId: "aaaaaaaa-0000-4000-8000-000000000001",
      homeTenant: "11111111-1111-1111-1111-111111111111",
      displayName: "Alice Contoso",
      guestIn: [
        { tenant: "22222222-2222-2222-2222-222222222222", objectId: "aaaaaaaa-0000-4000-8000-000000000002" },
        { tenant: "33333333-3333-3333-3333-333333333333", objectId: "aaaaaaaa-0000-4000-8000-000000000003" },
        { tenant: "44444444-4444-4444-4444-444444444444", objectId: "aaaaaaaa-0000-4000-8000-000000000004" },
      ],
      mfaCode: "123456",
    },
    {
      upn: "bob@fabrikam.onmicrosoft.com",
      password: "bob-Passw0rd!",
      objectId: "bbbbbbbb-0000-4000-8000-000000000001",
      homeTenant: "22222222-2222-2222-2222-222222222222",
      displayName: "Bob Fabrikam",
      mfaCode: "654321",
    },
  ],
  apps: [
    {
      clientId: AZURE_CLI_CLIENT_ID,
      displayName: "Microsoft Azure CLI",
      publicClient: true,
      preConsented: true,
      familyId: "1",
    },
    {
      clientId: AZURE_POWERSHELL_CLIENT_ID,
      displayName: "Microsoft Azure PowerShell",
      publicClient: true,
      preConsented: true,
      familyId: "1",
    },
    {
      clientId: "c0c0c0c0-0000-4000-8000-00000000a001",
      displayName: "azkeep test native app",
      tenant: "11111111-1111-1111-1111-111111111111",
      multiTenant: true,
      publicClient: true,
    },
    {
      clientId: "5e5e5e5e-0000-4000-8000-00000000c001",
      displayName: "azkeep-ci",
      tenant: "11111111-1111-1111-1111-111111111111",
      objectId: "5e5e5e5e-0000-4000-8000-00000000c0b1",
      secrets: [{ value: "azkeep-ci-secret-value" }],
      certificates: [{ pem: DEFAULT_SP_CERT_PEM }],
      federatedCredentials: [
        {
          name: "github-main",
          issuer: DEFAULT_FEDERATED_ISSUER,
          subject: DEFAULT_FEDERATED_SUBJECT,
          audiences: [FEDERATED_AUDIENCE],
        },
      ],
      appRoles: { "https://graph.microsoft.com": ["Application.Read.All"] },
    },
  ],
  managedIdentities: [
    {
      type: "system",
      clientId: "3a3a3a3a-0000-4000-8000-00000000d001",
      objectId: "3a3a3a3a-0000-4000-8000-00000000d0b1",
      tenant: "11111111-1111-1111-1111-111111111111",
    },
    {
      type: "user",
      clientId: "3a3a3a3a-0000-4000-8000-00000000d002",
      objectId: "3a3a3a3a-0000-4000-8000-00000000d0b2",
      resourceId:
        "/subscriptions/c0ffee00-0000-4000-8000-000000000001/resourceGroups/rg-identity/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-azkeep",
      tenant: "11111111-1111-1111-1111-111111111111",
    },
  ],
  subscriptions: [
    {
      id: "c0ffee00-0000-4000-8000-000000000001",
      displayName: "Contoso Dev",
      tenant: "11111111-1111-1111-1111-111111111111",
      managedByTenants: ["22222222-2222-2222-2222-222222222222"],
      access: [
        "alice@contoso.onmicrosoft.com",
        "5e5e5e5e-0000-4000-8000-00000000c001",
        "3a3a3a3a-0000-4000-8000-00000000d001",
        "3a3a3a3a-0000-4000-8000-00000000d002",
      ],
      resourceGroups: [
        { name: "rg-dev-app", location: "westeurope", tags: { env: "dev" } },
        { name: "rg-identity", location: "westeurope" },
      ],
    },
    {
      id: "c0ffee00-0000-4000-8000-000000000002",
      displayName: "Contoso Prod",
      tenant: "11111111-1111-1111-1111-111111111111",
      access: ["alice@contoso.onmicrosoft.com"],
      resourceGroups: [{ name: "rg-prod-web", location: "northeurope", tags: { env: "prod" } }],
    },
    {
      id: "c0ffee00-0000-4000-8000-000000000003",
      displayName: "Contoso Legacy (disabled)",
      state: "Disabled",
      tenant: "11111111-1111-1111-1111-111111111111",
      access: ["alice@contoso.onmicrosoft.com"],
    },
    {
      id: "c0ffee00-0000-4000-8000-000000000004",
      displayName: "Fabrikam Shared",
      tenant: "22222222-2222-2222-2222-222222222222",
      access: ["alice@contoso.onmicrosoft.com", "bob@fabrikam.onmicrosoft.com"],
      resourceGroups: [{ name: "rg-shared", location: "eastus" }],
    },
    {
      id: "c0ffee00-0000-4000-8000-000000000005",
      displayName: "Woodgrove Secure",
      tenant: "33333333-3333-3333-3333-333333333333",
      access: ["alice@contoso.onmicrosoft.com"],
    },
  ],
  federatedIssuers: [
    {
      issuer: DEFAULT_FEDERATED_ISSUER,
      jwks: { keys: [publicJwk(DEFAULT_FEDERATED_ISSUER_PRIVATE_JWK)] },
    },
  ],
};

/** A seed that is not usable; the message names the field and what to fix. */
export class SeedError extends Error {
  override name = "SeedError";
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATES: readonly string[] = ["Enabled", "Disabled", "Warned", "PastDue", "Deleted"];
const RG_NAME = /^[-\w._()]{1,90}$/;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks a seed (e.g. parsed from `--seed file.json`) and returns it typed. Throws a
 * `SeedError` naming the first problem, e.g. `users[0].homeTenant: "x" is not a tenant id of the seed`.
 */
export function parseSeed(input: unknown): Seed {
  const fail = (where: string, what: string): never => {
    throw new SeedError(`${where}: ${what}`);
  };
  function str(
    o: Obj,
    key: string,
    where: string,
    opts: { guid?: boolean; optional: true },
  ): string | undefined;
  function str(o: Obj, key: string, where: string, opts?: { guid?: boolean; optional?: false }): string;
  function str(
    o: Obj,
    key: string,
    where: string,
    opts: { guid?: boolean; optional?: boolean } = {},
  ): string | undefined {
    const v = o[key];
    if (v === undefined && opts.optional) return undefined;
    if (typeof v !== "string" || v.length === 0) return fail(`${where}.${key}`, "must be a non-empty string");
    if (opts.guid && !GUID.test(v)) return fail(`${where}.${key}`, `"${v}" is not a GUID`);
    return v;
  }
  const arr = (o: Obj, key: string, where: string, optional = false): unknown[] => {
    const v = o[key];
    if (v === undefined && optional) return [];
    if (!Array.isArray(v)) return fail(`${where}.${key}`, "must be an array");
    return v;
  };
  const obj = (v: unknown, where: string): Obj => (isObj(v) ? v : fail(where, "must be an object"));
  const strArray = (o: Obj, key: string, where: string): string[] | undefined => {
    if (o[key] === undefined) return undefined;
    const a = arr(o, key, where);
    return a.map((x, i) =>
      typeof x === "string" && x.length > 0 ? x : fail(`${where}.${key}[${i}]`, "must be a non-empty string"),
    );
  };
  const bool = (o: Obj, key: string, where: string): boolean | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    return typeof v === "boolean" ? v : fail(`${where}.${key}`, "must be true or false");
  };

  const root = obj(input, "seed");
  const tenantIds = new Set<string>();
  const tenants: SeedTenant[] = arr(root, "tenants", "seed").map((raw, i) => {
    const w = `tenants[${i}]`;
    const o = obj(raw, w);
    const t: SeedTenant = {
      id: str(o, "id", w, { guid: true }).toLowerCase(),
      domain: str(o, "domain", w),
      displayName: str(o, "displayName", w),
    };
    if (tenantIds.has(t.id)) fail(`${w}.id`, `"${t.id}" appears twice`);
    tenantIds.add(t.id);
    const domains = strArray(o, "domains", w);
    if (domains) t.domains = domains;
    const mfa = bool(o, "requireMfa", w);
    if (mfa !== undefined) t.requireMfa = mfa;
    const cc = str(o, "countryCode", w, { optional: true });
    if (cc) t.countryCode = cc;
    return t;
  });
  if (tenants.length === 0) fail("seed.tenants", "needs at least one tenant");
  const tenantRef = (v: string, where: string): string => {
    const id = v.toLowerCase();
    if (!tenantIds.has(id)) fail(where, `"${v}" is not a tenant id of the seed`);
    return id;
  };

  const upns = new Set<string>();
  const users: SeedUser[] = arr(root, "users", "seed", true).map((raw, i) => {
    const w = `users[${i}]`;
    const o = obj(raw, w);
    const upn = str(o, "upn", w);
    if (!upn.includes("@")) fail(`${w}.upn`, `"${upn}" is not a user principal name (name@domain)`);
    if (upns.has(upn.toLowerCase())) fail(`${w}.upn`, `"${upn}" appears twice`);
    upns.add(upn.toLowerCase());
    const u: SeedUser = {
      upn,
      password: str(o, "password", w),
      objectId: str(o, "objectId", w, { guid: true }).toLowerCase(),
      homeTenant: tenantRef(str(o, "homeTenant", w), `${w}.homeTenant`),
    };
    const dn = str(o, "displayName", w, { optional: true });
    if (dn) u.displayName = dn;
    if (o.guestIn !== undefined) {
      u.guestIn = arr(o, "guestIn", w).map((g, j) => {
        const gw = `${w}.guestIn[${j}]`;
        if (typeof g === "string") return tenantRef(g, gw);
        const go = obj(g, gw);
        const m: SeedGuestMembership = { tenant: tenantRef(str(go, "tenant", gw), `${gw}.tenant`) };
        const oid = str(go, "objectId", gw, { guid: true, optional: true });
        if (oid) m.objectId = oid.toLowerCase();
        return m;
      });
    }
    const mfaIn = strArray(o, "requireMfaIn", w);
    if (mfaIn) u.requireMfaIn = mfaIn.map((t, j) => tenantRef(t, `${w}.requireMfaIn[${j}]`));
    const code = str(o, "mfaCode", w, { optional: true });
    if (code) u.mfaCode = code;
    return u;
  });

  const clientIds = new Set<string>();
  const apps: SeedApp[] = arr(root, "apps", "seed", true).map((raw, i) => {
    const w = `apps[${i}]`;
    const o = obj(raw, w);
    const a: SeedApp = {
      clientId: str(o, "clientId", w, { guid: true }).toLowerCase(),
      displayName: str(o, "displayName", w),
    };
    if (clientIds.has(a.clientId)) fail(`${w}.clientId`, `"${a.clientId}" appears twice`);
    clientIds.add(a.clientId);
    const tenant = str(o, "tenant", w, { optional: true });
    if (tenant) a.tenant = tenantRef(tenant, `${w}.tenant`);
    for (const k of ["multiTenant", "publicClient", "preConsented"] as const) {
      const b = bool(o, k, w);
      if (b !== undefined) a[k] = b;
    }
    const fam = str(o, "familyId", w, { optional: true });
    if (fam) a.familyId = fam;
    const ru = strArray(o, "redirectUris", w);
    if (ru) a.redirectUris = ru;
    if (o.secrets !== undefined) {
      a.secrets = arr(o, "secrets", w).map((s, j) => {
        const sw = `${w}.secrets[${j}]`;
        const so = obj(s, sw);
        const sec: SeedSecret = { value: str(so, "value", sw) };
        const exp = str(so, "expiresAt", sw, { optional: true });
        if (exp) {
          if (Number.isNaN(Date.parse(exp))) fail(`${sw}.expiresAt`, `"${exp}" is not an ISO date`);
          sec.expiresAt = exp;
        }
        return sec;
      });
    }
    if (o.certificates !== undefined) {
      a.certificates = arr(o, "certificates", w).map((c, j) => {
        const cw = `${w}.certificates[${j}]`;
        const pem = str(obj(c, cw), "pem", cw);
        if (!pem.includes("-----BEGIN CERTIFICATE-----"))
          fail(`${cw}.pem`, "must be a PEM certificate (-----BEGIN CERTIFICATE-----)");
        return { pem };
      });
    }
    if (o.federatedCredentials !== undefined) {
      a.federatedCredentials = arr(o, "federatedCredentials", w).map((c, j) => {
        const cw = `${w}.federatedCredentials[${j}]`;
        const co = obj(c, cw);
        const fc: SeedFederatedCredential = {
          issuer: str(co, "issuer", cw),
          subject: str(co, "subject", cw),
        };
        const name = str(co, "name", cw, { optional: true });
        if (name) fc.name = name;
        const aud = strArray(co, "audiences", cw);
        if (aud) fc.audiences = aud;
        return fc;
      });
    }
    const oid = str(o, "objectId", w, { guid: true, optional: true });
    if (oid) a.objectId = oid.toLowerCase();
    if (o.appRoles !== undefined) {
      const ro = obj(o.appRoles, `${w}.appRoles`);
      a.appRoles = {};
      for (const res of Object.keys(ro)) {
        const list = strArray(ro, res, `${w}.appRoles`);
        if (list) a.appRoles[res] = list;
      }
    }
    const uris = strArray(o, "identifierUris", w);
    if (uris) a.identifierUris = uris;
    if (a.publicClient && (a.secrets?.length || a.certificates?.length || a.federatedCredentials?.length))
      fail(w, "a public client cannot have secrets, certificates or federated credentials");
    return a;
  });

  const managedIdentities: SeedManagedIdentity[] = arr(root, "managedIdentities", "seed", true).map(
    (raw, i) => {
      const w = `managedIdentities[${i}]`;
      const o = obj(raw, w);
      const type = o.type;
      if (type !== "system" && type !== "user") fail(`${w}.type`, 'must be "system" or "user"');
      const mi: SeedManagedIdentity = {
        type: type as "system" | "user",
        clientId: str(o, "clientId", w, { guid: true }).toLowerCase(),
        objectId: str(o, "objectId", w, { guid: true }).toLowerCase(),
        tenant: tenantRef(str(o, "tenant", w), `${w}.tenant`),
      };
      const rid = str(o, "resourceId", w, { optional: true });
      if (rid) mi.resourceId = rid;
      return mi;
    },
  );
  if (managedIdentities.filter((m) => m.type === "system").length > 1)
    fail("seed.managedIdentities", "at most one system-assigned identity (this machine has one)");

  const subIds = new Set<string>();
  const subscriptions: SeedSubscription[] = arr(root, "subscriptions", "seed", true).map((raw, i) => {
    const w = `subscriptions[${i}]`;
    const o = obj(raw, w);
    const s: SeedSubscription = {
      id: str(o, "id", w, { guid: true }).toLowerCase(),
      displayName: str(o, "displayName", w),
      tenant: tenantRef(str(o, "tenant", w), `${w}.tenant`),
      access: strArray(o, "access", w) ?? fail(`${w}.access`, "must be an array (who can see it)"),
    };
    if (subIds.has(s.id)) fail(`${w}.id`, `"${s.id}" appears twice`);
    subIds.add(s.id);
    const state = str(o, "state", w, { optional: true });
    if (state !== undefined) {
      if (!STATES.includes(state)) fail(`${w}.state`, `must be one of ${STATES.join(", ")}`);
      s.state = state as SubscriptionState;
    }
    const mbt = strArray(o, "managedByTenants", w);
    if (mbt) s.managedByTenants = mbt.map((t, j) => tenantRef(t, `${w}.managedByTenants[${j}]`));
    if (o.resourceGroups !== undefined) {
      s.resourceGroups = arr(o, "resourceGroups", w).map((g, j) => {
        const gw = `${w}.resourceGroups[${j}]`;
        const go = obj(g, gw);
        const name = str(go, "name", gw);
        if (!RG_NAME.test(name) || name.endsWith("."))
          fail(`${gw}.name`, `"${name}" is not a valid resource group name`);
        const rg: SeedResourceGroup = { name, location: str(go, "location", gw) };
        if (go.tags !== undefined) {
          const to = obj(go.tags, `${gw}.tags`);
          rg.tags = {};
          for (const [k, v] of Object.entries(to)) {
            if (typeof v !== "string") fail(`${gw}.tags.${k}`, "must be a string");
            rg.tags[k] = v as string;
          }
        }
        return rg;
      });
    }
    return s;
  });

  const federatedIssuers: SeedFederatedIssuer[] = arr(root, "federatedIssuers", "seed", true).map(
    (raw, i) => {
      const w = `federatedIssuers[${i}]`;
      const o = obj(raw, w);
      const jwks = obj(o.jwks, `${w}.jwks`);
      const keys = arr(jwks, "keys", `${w}.jwks`).map((k, j) => obj(k, `${w}.jwks.keys[${j}]`));
      return { issuer: str(o, "issuer", w), jwks: { keys } };
    },
  );

  const seed: Seed = { tenants, users, apps, subscriptions, managedIdentities, federatedIssuers };
  const resources = strArray(root, "resources", "seed");
  if (resources) seed.resources = resources;
  return seed;
}
