/**
 * The control API: an HTTP API under `/_emulator/` that tests and the demo use to drive the
 * emulator (expire or revoke refresh tokens, set lifetimes, require MFA, approve device codes,
 * inject faults, count requests, CAE challenges, move the clock, reset), and `EmulatorControl`,
 * a JS client for it that works from any process.
 *
 * It can approve a device code as anyone and mint federated tokens, so it answers only:
 * - a request carrying the per-run control token (`Authorization: Bearer …`): another local
 *   user, who can connect to 127.0.0.1 but never saw the token `emulator start` printed, gets 401;
 * - on the plain listener, with `Host` naming it (`127.0.0.1:PORT` or `localhost:PORT`): a web
 *   page that rebinds its own DNS name to 127.0.0.1 sends its own name as `Host` (403);
 * - not from a web page: any `Origin` but the listener's own, or `Sec-Fetch-Site` other than
 *   `same-origin`/`none`, is refused (403) — a cross-origin `text/plain` POST needs no
 *   preflight, so CORS alone would not stop it from acting.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { mintFederatedToken } from "./federated.js";
import { header, type Req } from "./http.js";
import {
  ENDPOINTS,
  type Fault,
  type FaultType,
  type Lifetimes,
  type RequestRecord,
  type World,
} from "./world.js";

export const CONTROL_PREFIX = "_emulator";

export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Who may use the control API: the run's token, and the `host:port` names of the plain listener. */
export interface ControlAccess {
  token: string;
  hosts(): readonly string[];
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Throws a `ControlError` (401/403) unless `req` may use the control API (see the file comment). */
export function checkControlAccess(req: Req, access: ControlAccess): void {
  const host = (header(req, "host") ?? "").toLowerCase();
  const hosts = access.hosts().map((h) => h.toLowerCase());
  if (req.https || !hosts.includes(host))
    throw new ControlError(
      403,
      `The control API answers only on the emulator's plain HTTP address (${hosts[0] ?? "?"}), not for Host '${host.slice(0, 100)}'.`,
    );
  const origin = header(req, "origin");
  if (origin !== undefined && !hosts.some((h) => origin.toLowerCase() === `http://${h}`))
    throw new ControlError(403, "The control API does not answer requests from web pages (cross-origin).");
  const site = header(req, "sec-fetch-site");
  if (site !== undefined && site !== "same-origin" && site !== "none")
    throw new ControlError(403, "The control API does not answer requests from web pages (cross-site).");
  const auth = header(req, "authorization") ?? "";
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m || !timingSafeEqual(digest(m[1]!), digest(access.token)))
    throw new ControlError(
      401,
      "The control API needs the emulator's control token (Authorization: Bearer <token>); `azkeep emulator start` prints it, `startEmulator()` returns it as `controlToken`.",
    );
}

export interface ControlContext {
  world: World;
  info(): Record<string, unknown>;
}

export interface FaultSpec {
  /** Endpoint name (`token`, `devicecode`, `subscriptions`, … see docs/emulator.md) or `*`. */
  endpoint: string;
  type: FaultType;
  status?: number;
  delayMs?: number;
  retryAfter?: number;
  /** How many requests it hits (default: all until cleared). */
  count?: number;
}

export interface RequestFilter {
  endpoint?: string;
  grantType?: string;
  method?: string;
  tenant?: string;
  clientId?: string;
}

export interface DeviceCodeInfo {
  userCode: string;
  clientId: string;
  tenant: string;
  scope: string;
  status: "pending" | "approved" | "denied" | "redeemed" | "expired";
  expiresAt: string;
}

function jsonBody(req: Req): Record<string, unknown> {
  if (req.body.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(req.body);
  } catch {
    throw new ControlError(400, "The body must be JSON.");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new ControlError(400, "The body must be a JSON object.");
  return v as Record<string, unknown>;
}

function optNumber(o: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max)
    throw new ControlError(400, `'${key}' must be a number from ${min} to ${max}.`);
  return v;
}

function optString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || v === "") throw new ControlError(400, `'${key}' must be a non-empty string.`);
  return v;
}

function filterRequests(log: readonly RequestRecord[], f: RequestFilter): RequestRecord[] {
  return log.filter(
    (r) =>
      (f.endpoint === undefined || r.endpoint === f.endpoint) &&
      (f.grantType === undefined || r.grantType === f.grantType) &&
      (f.method === undefined || r.method === f.method.toUpperCase()) &&
      (f.tenant === undefined || r.tenant?.toLowerCase() === f.tenant.toLowerCase()) &&
      (f.clientId === undefined || r.clientId === f.clientId.toLowerCase()),
  );
}

const LIFETIME_KEYS: (keyof Lifetimes)[] = [
  "accessToken",
  "idToken",
  "refreshToken",
  "authCode",
  "deviceCode",
  "deviceCodeInterval",
  "managedIdentity",
  "session",
];

export async function controlRequest(
  ctx: ControlContext,
  req: Req,
  segments: string[],
): Promise<{ status: number; body?: unknown }> {
  const w = ctx.world;
  const path = segments.slice(1);
  const m = req.method;
  const route = `${m} /${path.join("/")}`;
  const userOf = (id: string) => {
    const u = w.user(id);
    if (!u) throw new ControlError(404, `No seeded user '${id.slice(0, 100)}'.`);
    return u;
  };

  if (route === "GET /") return { status: 200, body: ctx.info() };
  if (route === "GET /seed") return { status: 200, body: w.seed };
  if (route === "POST /reset") {
    w.reset();
    return { status: 204 };
  }
  if (m === "GET" && path[0] === "requests" && path.length === 1) {
    const f: RequestFilter = {};
    for (const [k, q] of [
      ["endpoint", "endpoint"],
      ["grantType", "grant_type"],
      ["method", "method"],
      ["tenant", "tenant"],
      ["clientId", "client_id"],
    ] as const) {
      const v = req.query.get(q);
      if (v !== null) f[k] = v;
    }
    const requests = filterRequests(w.log, f);
    return { status: 200, body: { count: requests.length, requests } };
  }
  if (route === "DELETE /requests" || route === "POST /requests/clear") {
    w.log.length = 0;
    return { status: 204 };
  }
  if (m === "POST" && path[0] === "users" && path.length === 3) {
    const u = userOf(path[1]!);
    const now = w.now();
    if (path[2] === "expire-refresh-tokens") {
      let n = 0;
      for (const rt of w.refreshTokens.values())
        if (rt.userUpn === u.upn && rt.expiresAt > now) {
          rt.expiresAt = now;
          n++;
        }
      return { status: 200, body: { expired: n } };
    }
    if (path[2] === "revoke-refresh-tokens") {
      // Like "revoke sessions" in Entra: every grant and sign-in session issued before now stops working.
      w.tokensValidFrom.set(u.upn.toLowerCase(), now + 1);
      for (const [id, s] of w.sessions) if (s.userUpn === u.upn) w.sessions.delete(id);
      return { status: 200, body: { revokedBefore: new Date(now + 1).toISOString() } };
    }
  }
  if ((m === "PUT" || m === "POST" || m === "PATCH") && route.endsWith(" /lifetimes")) {
    const b = jsonBody(req);
    for (const k of Object.keys(b))
      if (!LIFETIME_KEYS.includes(k as keyof Lifetimes))
        throw new ControlError(
          400,
          `Unknown lifetime '${k.slice(0, 50)}'; known: ${LIFETIME_KEYS.join(", ")}.`,
        );
    for (const k of LIFETIME_KEYS) {
      const v = optNumber(b, k, k === "deviceCodeInterval" ? 0 : 1, 10 * 365 * 24 * 3600);
      if (v !== undefined) w.lifetimes[k] = Math.floor(v);
    }
    return { status: 200, body: w.lifetimes };
  }
  if (route === "GET /lifetimes") return { status: 200, body: w.lifetimes };
  if ((m === "PUT" || m === "POST") && path[0] === "tenants" && path.length === 3 && path[2] === "mfa") {
    const t = w.tenant(path[1]!);
    if (!t) throw new ControlError(404, `No seeded tenant '${path[1]!.slice(0, 100)}'.`);
    const b = jsonBody(req);
    const required = b.required === undefined ? true : b.required;
    if (typeof required !== "boolean") throw new ControlError(400, "'required' must be true or false.");
    w.mfaOverrides.set(t.id, required);
    return { status: 200, body: { tenant: t.id, mfaRequired: required } };
  }
  if (route === "GET /device-codes") {
    const now = w.now();
    const list: DeviceCodeInfo[] = [...w.deviceCodes.values()].map((d) => ({
      userCode: d.userCode,
      clientId: d.clientId,
      tenant: d.tenantSegment,
      scope: d.scope,
      status: d.status === "pending" && now >= d.expiresAt ? "expired" : d.status,
      expiresAt: new Date(d.expiresAt).toISOString(),
    }));
    return { status: 200, body: { deviceCodes: list } };
  }
  if (m === "POST" && path[0] === "device-codes" && path.length === 3) {
    const code = path[1]!.replace(/[\s-]/g, "").toUpperCase();
    const rec = [...w.deviceCodes.values()].find((d) => d.userCode === code);
    if (!rec) throw new ControlError(404, `No device code with user code '${path[1]!.slice(0, 20)}'.`);
    if (rec.status !== "pending" || w.now() >= rec.expiresAt)
      throw new ControlError(409, `The device code '${rec.userCode}' is no longer pending.`);
    if (path[2] === "approve") {
      const b = jsonBody(req);
      const user = userOf(optString(b, "user") ?? "");
      rec.status = "approved";
      rec.userUpn = user.upn;
      // Approval stands for the whole interactive sign-in, second factor included.
      rec.amr = b.mfa === false ? ["pwd"] : ["pwd", "mfa"];
      return { status: 200, body: { userCode: rec.userCode, status: rec.status, user: user.upn } };
    }
    if (path[2] === "deny") {
      rec.status = "denied";
      return { status: 200, body: { userCode: rec.userCode, status: rec.status } };
    }
  }
  if (route === "POST /faults") {
    const b = jsonBody(req);
    const endpoint = optString(b, "endpoint") ?? "*";
    if (endpoint !== "*" && !(ENDPOINTS as readonly string[]).includes(endpoint))
      throw new ControlError(
        400,
        `Unknown endpoint '${endpoint.slice(0, 50)}'; known: *, ${ENDPOINTS.join(", ")}.`,
      );
    const type = b.type;
    if (type !== "status" && type !== "delay" && type !== "reset" && type !== "throttle")
      throw new ControlError(400, "'type' must be status, delay, reset or throttle.");
    const fault: Fault = { id: w.randomId(), endpoint, type };
    const status = optNumber(b, "status", 400, 599);
    if (status !== undefined) fault.status = Math.floor(status);
    const delayMs = optNumber(b, "delayMs", 0, 600_000);
    if (delayMs !== undefined) fault.delayMs = delayMs;
    else if (type === "delay") throw new ControlError(400, "A delay fault needs 'delayMs'.");
    const retryAfter = optNumber(b, "retryAfter", 0, 86_400);
    if (retryAfter !== undefined) fault.retryAfter = Math.floor(retryAfter);
    const count = optNumber(b, "count", 1, 1_000_000);
    if (count !== undefined) fault.remaining = Math.floor(count);
    w.faults.push(fault);
    return { status: 201, body: fault };
  }
  if (route === "GET /faults") return { status: 200, body: { faults: w.faults } };
  if (route === "DELETE /faults") {
    w.faults = [];
    return { status: 204 };
  }
  if (route === "POST /claims-challenge") {
    const b = jsonBody(req);
    const principal = optString(b, "principal");
    const tenant = optString(b, "tenant");
    w.claimsChallenges.push({ principal, tenant: tenant?.toLowerCase(), since: w.now() + 1 });
    return { status: 201, body: { principal: principal ?? "*", tenant: tenant ?? "*" } };
  }
  if (route === "DELETE /claims-challenge") {
    w.claimsChallenges = [];
    return { status: 204 };
  }
  if (route === "POST /clock") {
    const b = jsonBody(req);
    const s = optNumber(b, "advanceSeconds", -10 * 365 * 86400, 10 * 365 * 86400);
    if (s === undefined) throw new ControlError(400, "Give 'advanceSeconds'.");
    w.clockOffsetMs += s * 1000;
    return {
      status: 200,
      body: { now: new Date(w.now()).toISOString(), offsetSeconds: w.clockOffsetMs / 1000 },
    };
  }
  if (route === "GET /clock")
    return {
      status: 200,
      body: { now: new Date(w.now()).toISOString(), offsetSeconds: w.clockOffsetMs / 1000 },
    };
  if (route === "POST /federated-token") {
    const b = jsonBody(req);
    const opts: Parameters<typeof mintFederatedToken>[0] = { now: w.now() };
    const subject = optString(b, "subject");
    if (subject) opts.subject = subject;
    const audience = optString(b, "audience");
    if (audience) opts.audience = audience;
    const issuer = optString(b, "issuer");
    if (issuer) opts.issuer = issuer;
    const lifetime = optNumber(b, "lifetimeSeconds", -86400, 86400);
    if (lifetime !== undefined) opts.lifetimeSeconds = lifetime;
    return { status: 200, body: { token: await mintFederatedToken(opts) } };
  }
  throw new ControlError(
    404,
    `No control route '${route.slice(0, 100)}'. See docs/emulator.md for the control API.`,
  );
}

// ---------------------------------------------------------------------------------------------
// the JS client

export interface RequestList {
  count: number;
  requests: RequestRecord[];
}

/**
 * A client of the control API. Works in the emulator's process (`emulator.control`) and from
 * any other process given the emulator's plain HTTP URL and the run's control token (printed by
 * `azkeep emulator start`): `new EmulatorControl(url, token)`.
 */
export class EmulatorControl {
  readonly baseUrl: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    this.baseUrl = `${url.replace(/\/+$/, "")}/${CONTROL_PREFIX}`;
    this.#token = token;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.#token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        /* plain text */
      }
      throw new Error(`Emulator control ${method} ${path} failed (${res.status}): ${message}`);
    }
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** Everything back to the seed: tokens, codes, sessions, faults, requests, lifetimes, clock, resource groups. */
  reset(): Promise<void> {
    return this.call("POST", "/reset");
  }

  info(): Promise<Record<string, unknown>> {
    return this.call("GET", "/");
  }

  requests(filter: RequestFilter = {}): Promise<RequestList> {
    const q = new URLSearchParams();
    if (filter.endpoint) q.set("endpoint", filter.endpoint);
    if (filter.grantType) q.set("grant_type", filter.grantType);
    if (filter.method) q.set("method", filter.method);
    if (filter.tenant) q.set("tenant", filter.tenant);
    if (filter.clientId) q.set("client_id", filter.clientId);
    const qs = q.toString();
    return this.call("GET", `/requests${qs ? `?${qs}` : ""}`);
  }

  /** How many requests matched, e.g. `countRequests({ endpoint: "token", grantType: "refresh_token" })`. */
  async countRequests(filter: RequestFilter = {}): Promise<number> {
    return (await this.requests(filter)).count;
  }

  clearRequests(): Promise<void> {
    return this.call("DELETE", "/requests");
  }

  /** The user's refresh tokens expire now (AADSTS700082 on use). `user`: UPN or object id. */
  expireRefreshTokens(user: string): Promise<{ expired: number }> {
    return this.call("POST", `/users/${encodeURIComponent(user)}/expire-refresh-tokens`);
  }

  /** Revokes the user's grants and sessions (AADSTS50173 on use). */
  revokeRefreshTokens(user: string): Promise<{ revokedBefore: string }> {
    return this.call("POST", `/users/${encodeURIComponent(user)}/revoke-refresh-tokens`);
  }

  /** Token lifetimes in seconds for tokens issued from now on. */
  setLifetimes(lifetimes: Partial<Lifetimes>): Promise<Lifetimes> {
    return this.call("PUT", "/lifetimes", lifetimes);
  }

  requireMfa(tenant: string, required = true): Promise<{ tenant: string; mfaRequired: boolean }> {
    return this.call("PUT", `/tenants/${encodeURIComponent(tenant)}/mfa`, { required });
  }

  async deviceCodes(): Promise<DeviceCodeInfo[]> {
    return (await this.call<{ deviceCodes: DeviceCodeInfo[] }>("GET", "/device-codes")).deviceCodes;
  }

  /** Waits until a device code is pending (e.g. one another process asked for) and returns it. */
  async waitForDeviceCode(options: { timeoutMs?: number; clientId?: string } = {}): Promise<DeviceCodeInfo> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      const pending = (await this.deviceCodes()).filter(
        (d) => d.status === "pending" && (!options.clientId || d.clientId === options.clientId.toLowerCase()),
      );
      const last = pending[pending.length - 1];
      if (last) return last;
      if (Date.now() > deadline) throw new Error("No pending device code appeared in time.");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Approves a device code as `user` (UPN), as if they signed in (with MFA) on the device code page. */
  approveDeviceCode(userCode: string, user: string, options: { mfa?: boolean } = {}): Promise<unknown> {
    return this.call("POST", `/device-codes/${encodeURIComponent(userCode)}/approve`, { user, ...options });
  }

  denyDeviceCode(userCode: string): Promise<unknown> {
    return this.call("POST", `/device-codes/${encodeURIComponent(userCode)}/deny`);
  }

  /**
   * Injects a fault on an endpoint: `status` (HTTP 5xx), `delay` (then served normally),
   * `reset` (connection dropped) or `throttle` (429 with Retry-After). `count` limits it.
   */
  injectFault(fault: FaultSpec): Promise<Fault> {
    return this.call("POST", "/faults", fault);
  }

  clearFaults(): Promise<void> {
    return this.call("DELETE", "/faults");
  }

  /**
   * ARM answers tokens issued before now with a CAE claims challenge (401, `insufficient_claims`)
   * until a new token is fetched. Narrow it to a principal (UPN, object id, client id) or tenant.
   */
  requireClaimsChallenge(options: { principal?: string; tenant?: string } = {}): Promise<unknown> {
    return this.call("POST", "/claims-challenge", options);
  }

  clearClaimsChallenges(): Promise<void> {
    return this.call("DELETE", "/claims-challenge");
  }

  /** Moves the emulator's clock (token issue times, expiry checks) by `seconds`. */
  advanceClock(seconds: number): Promise<{ now: string; offsetSeconds: number }> {
    return this.call("POST", "/clock", { advanceSeconds: seconds });
  }

  /** A workload identity token from the default seed's federated issuer (see `mintFederatedToken`). */
  async mintFederatedToken(
    options: { subject?: string; audience?: string; issuer?: string; lifetimeSeconds?: number } = {},
  ): Promise<string> {
    return (await this.call<{ token: string }>("POST", "/federated-token", options)).token;
  }
}
