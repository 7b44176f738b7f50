/**
 * Shape checks for azkeep's plain JSON files (`profile.json`, `config.json`): a small
 * hand-written validator rather than a schema library, because both files are read on the
 * `get-access-token` hot path and this costs no module load (measured in docs/benchmarks.md).
 *
 * Threat: a file of the wrong shape — edited by hand, by another tool, or by an attacker — was
 * obeyed as far as it went: `"user": null` in a profile entry crashed get-access-token, logout
 * and login; `{"store":"oops"}` in config.json made azkeep set the whole sealed store aside. A
 * wrong shape is now "damaged", told apart from "not JSON" only by its words, and never makes
 * azkeep discard the sealed store.
 *
 * Each check returns `undefined` when the value fits, else the first problem, as a JSON path
 * and what was wrong ("subscriptions[0].user is null, not an object").
 */

type Problem = string | undefined;

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function want(path: string, v: unknown, what: string): string {
  return `${path} is ${typeName(v)}, not ${what}`;
}

function str(o: Record<string, unknown>, key: string, path: string, optional = false): Problem {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  return typeof v === "string" ? undefined : want(`${path}.${key}`, v, "a string");
}

function optionalObject(o: Record<string, unknown>, key: string, path: string): Problem {
  const v = o[key];
  return v === undefined || isObject(v) ? undefined : want(`${path}.${key}`, v, "an object");
}

const USER_TYPES = ["user", "servicePrincipal"];

/** One entry of `profile.json`'s `subscriptions` (the Azure CLI's azureProfile.json schema). */
function subscriptionProblem(e: unknown, path: string): Problem {
  if (!isObject(e)) return want(path, e, "an object");
  const p =
    str(e, "id", path) ??
    str(e, "name", path) ??
    str(e, "state", path) ??
    str(e, "tenantId", path) ??
    str(e, "environmentName", path) ??
    str(e, "homeTenantId", path, true) ??
    str(e, "tenantDefaultDomain", path, true) ??
    str(e, "tenantDisplayName", path, true);
  if (p) return p;
  if (typeof e.isDefault !== "boolean") return want(`${path}.isDefault`, e.isDefault, "true or false");
  const u = e.user;
  if (!isObject(u)) return want(`${path}.user`, u, "an object");
  const up = str(u, "name", `${path}.user`) ?? str(u, "assignedIdentityInfo", `${path}.user`, true);
  if (up) return up;
  if (typeof u.type !== "string" || !USER_TYPES.includes(u.type))
    return `${path}.user.type is ${JSON.stringify(u.type) ?? "missing"}, not "user" or "servicePrincipal"`;
  const m = e.managedByTenants;
  if (m !== undefined && m !== null) {
    if (!Array.isArray(m)) return want(`${path}.managedByTenants`, m, "a list");
    for (const [i, t] of m.entries()) {
      if (!isObject(t)) return want(`${path}.managedByTenants[${i}]`, t, "an object");
      const tp = str(t, "tenantId", `${path}.managedByTenants[${i}]`);
      if (tp) return tp;
    }
  }
  return undefined;
}

/** `profile.json`: `{ subscriptions: [...], installationId?: string }`. */
export function profileProblem(value: unknown): Problem {
  if (!isObject(value)) return want("the file", value, "an object");
  if (!Array.isArray(value.subscriptions)) return want("subscriptions", value.subscriptions, "a list");
  for (const [i, e] of value.subscriptions.entries()) {
    const p = subscriptionProblem(e, `subscriptions[${i}]`);
    if (p) return p;
  }
  return str(value, "installationId", "the file", true)?.replace("the file.", "");
}

const PROVIDERS = ["keyring", "keyutils", "passphrase", "insecure-file", "memory"];

function keyRecordProblem(v: unknown, path: string): Problem {
  if (v === undefined) return undefined;
  if (!isObject(v)) return want(path, v, "an object");
  if (typeof v.provider !== "string" || !PROVIDERS.includes(v.provider))
    return `${path}.provider is ${JSON.stringify(v.provider) ?? "missing"}, not a key provider`;
  const p = str(v, "keyId", path) ?? str(v, "keyCheck", path) ?? str(v, "createdAt", path);
  if (p) return p;
  if (!/^[0-9a-f]{32}$/.test(v.keyId as string)) return `${path}.keyId is not 32 hexadecimal digits`;
  const s = v.scrypt;
  if (s !== undefined) {
    if (!isObject(s)) return want(`${path}.scrypt`, s, "an object");
    for (const k of ["N", "r", "p"])
      if (typeof s[k] !== "number" || !Number.isSafeInteger(s[k]) || s[k] < 1)
        return want(`${path}.scrypt.${k}`, s[k], "a positive whole number");
  }
  return undefined;
}

function cloudProblem(c: unknown, path: string): Problem {
  if (!isObject(c)) return want(path, c, "an object");
  const p = str(c, "name", path) ?? str(c, "profile", path, true);
  if (p) return p;
  for (const k of ["endpoints", "suffixes"]) {
    const v = c[k];
    if (v === undefined) continue;
    if (!isObject(v)) return want(`${path}.${k}`, v, "an object");
    for (const [name, value] of Object.entries(v))
      if (typeof value !== "string") return want(`${path}.${k}.${name}`, value, "a string");
  }
  return undefined;
}

/**
 * `config.json`: the store's key records and the cloud settings. Fields this version does not
 * know are left alone (other versions and parts add theirs); known fields must fit.
 */
export function configProblem(value: unknown): Problem {
  if (!isObject(value)) return want("the file", value, "an object");
  const p = optionalObject(value, "store", "the file") ?? optionalObject(value, "cloud", "the file");
  if (p) return p.replace("the file.", "");
  const s = value.store;
  if (isObject(s)) {
    const k = keyRecordProblem(s.key, "store.key") ?? keyRecordProblem(s.previous, "store.previous");
    if (k) return k;
    const o = s.insecureFileOptIn;
    if (o !== undefined) {
      if (!isObject(o)) return want("store.insecureFileOptIn", o, "an object");
      const op = str(o, "at", "store.insecureFileOptIn") ?? str(o, "via", "store.insecureFileOptIn");
      if (op) return op;
    }
  }
  const c = value.cloud;
  if (isObject(c)) {
    const cp = str(c, "activeCloud", "cloud", true);
    if (cp) return cp;
    const custom = c.customClouds;
    if (custom !== undefined) {
      if (!Array.isArray(custom)) return want("cloud.customClouds", custom, "a list");
      for (const [i, cl] of custom.entries()) {
        const p2 = cloudProblem(cl, `cloud.customClouds[${i}]`);
        if (p2) return p2;
      }
    }
    const subs = c.cloudSubscriptions;
    if (subs !== undefined) {
      if (!isObject(subs)) return want("cloud.cloudSubscriptions", subs, "an object");
      for (const [name, v] of Object.entries(subs))
        if (typeof v !== "string") return want(`cloud.cloudSubscriptions.${name}`, v, "a string");
    }
  }
  return undefined;
}
