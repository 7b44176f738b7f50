/**
 * One request handler for everything the emulator serves — Entra ID, ARM, managed identity
 * and the control API — routed by path, so it answers the same on the plain HTTP port, the
 * HTTPS listener and through the CONNECT proxy (where the Host header is
 * `login.microsoftonline.com` or `management.azure.com`). It counts requests, applies
 * injected faults, and turns every failure into the error format of the endpoint hit: it never
 * crashes or answers 500 on bad input.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ArmError, armMetadata, armRequest } from "./arm.js";
import { authorizeRequest, deviceLoginRequest, loginRequest, logoutRequest } from "./authorize.js";
import {
  CONTROL_PREFIX,
  ControlError,
  checkControlAccess,
  controlRequest,
  type ControlAccess,
} from "./control.js";
import {
  deviceCodeEndpoint,
  instanceDiscovery,
  keysDocument,
  openidConfiguration,
  resolveTarget,
  tokenEndpoint,
  userRealm,
  type EntraContext,
} from "./entra.js";
import { EntraError, entraErrorBody } from "./errors.js";
import {
  BadRequest,
  correlationIdOf,
  isHttps,
  parseTarget,
  readBody,
  sendEmpty,
  sendHtml,
  sendJson,
  type Req,
} from "./http.js";
import { IdentityError, appServiceToken, imdsToken } from "./identity.js";
import type { TokenIssuer, SigningKey } from "./tokens.js";
import { errorPage } from "./pages.js";
import type { EndpointName, Fault, World } from "./world.js";

export interface CoreContext extends EntraContext {
  world: World;
  issuer: TokenIssuer;
  key: SigningKey;
  identityHeader: string;
  /** `host:port` of the plain listener, for requests without a usable Host header. */
  fallbackHost(): string;
  info(): Record<string, unknown>;
  /** The control API's token and the names of the plain listener. */
  control: ControlAccess;
}

type Family = "entra" | "entra-html" | "arm" | "identity" | "control" | "other";

interface Route {
  endpoint: EndpointName;
  family: Family;
  run: (req: Req, res: ServerResponse) => Promise<void>;
}

function entraJson(ctx: CoreContext, res: ServerResponse, req: Req, e: EntraError): void {
  sendJson(
    res,
    e.status,
    entraErrorBody(e, { origin: req.origin, correlationId: req.correlationId, now: ctx.world.now() }),
    {
      "client-request-id": req.correlationId,
      "x-ms-request-id": ctx.world.randomId(),
    },
  );
}

function armJson(res: ServerResponse, req: Req, e: ArmError): void {
  sendJson(
    res,
    e.status,
    { error: { code: e.code, message: e.message } },
    {
      ...e.headers,
      "x-ms-request-id": req.correlationId,
      "x-ms-correlation-request-id": req.correlationId,
    },
  );
}

function route(ctx: CoreContext, segments: string[]): Route {
  const lower = segments.map((s) => s.toLowerCase());
  const [a, b, c, d] = lower;
  const n = lower.length;
  const entra = (endpoint: EndpointName, run: (req: Req) => unknown): Route => ({
    endpoint,
    family: "entra",
    run: async (req, res) => {
      const body = await run(req);
      sendJson(res, 200, body, {
        "client-request-id": req.correlationId,
        "x-ms-request-id": ctx.world.randomId(),
      });
    },
  });

  if (a === CONTROL_PREFIX)
    return {
      endpoint: "other",
      family: "control",
      run: async (req, res) => {
        checkControlAccess(req, ctx.control);
        const r = await controlRequest(ctx, req, segments);
        if (r.body === undefined) sendEmpty(res, r.status);
        else sendJson(res, r.status, r.body);
      },
    };
  if (n === 4 && a === "metadata" && b === "identity" && c === "oauth2" && d === "token")
    return {
      endpoint: "imds",
      family: "identity",
      run: async (req, res) => sendJson(res, 200, await imdsToken(ctx, req)),
    };
  if (n === 2 && a === "msi" && b === "token")
    return {
      endpoint: "appservice",
      family: "identity",
      run: async (req, res) => sendJson(res, 200, await appServiceToken(ctx, req)),
    };
  if (n === 2 && a === "metadata" && b === "endpoints")
    return {
      endpoint: "arm-metadata",
      family: "arm",
      run: async (req, res) => sendJson(res, 200, armMetadata(req)),
    };
  if (a === "tenants" || a === "subscriptions") {
    const endpoint: EndpointName =
      a === "tenants" ? "tenants" : n === 1 ? "subscriptions" : n === 2 ? "subscription" : "resourcegroups";
    return {
      endpoint,
      family: "arm",
      run: async (req, res) => {
        const r = await armRequest(ctx, req, segments);
        const headers = {
          ...(r.headers ?? {}),
          "x-ms-request-id": req.correlationId,
          "x-ms-correlation-request-id": req.correlationId,
        };
        if (r.body === undefined) sendEmpty(res, r.status, headers);
        else sendJson(res, r.status, r.body, headers);
      },
    };
  }
  if (n === 1 && a === "devicelogin")
    return {
      endpoint: "devicelogin",
      family: "entra-html",
      run: (req, res) => deviceLoginRequest(ctx, req, res),
    };
  if (n === 2 && a === "oidc" && b === "userinfo")
    return {
      endpoint: "userinfo",
      family: "entra",
      run: async (req, res) => {
        const { userInfo } = await import("./userinfo.js");
        const r = await userInfo(ctx, req);
        sendJson(res, r.status, r.body, r.headers);
      },
    };
  if (n === 1 && a === "error")
    return {
      endpoint: "other",
      family: "entra-html",
      run: async (req, res) => {
        const code = (req.query.get("code") ?? "").replace(/\D/g, "").slice(0, 10);
        sendHtml(
          res,
          200,
          errorPage(ctx, `AADSTS${code}`, "See the error description your application received."),
        );
      },
    };
  if (n >= 2 && a !== undefined) {
    const seg = segments[0]!;
    const tail = lower.slice(1).join("/");
    switch (tail) {
      case "discovery/instance":
      case "discovery/v2.0/instance":
        return entra("instance-discovery", (req) => instanceDiscovery(req));
      case "v2.0/.well-known/openid-configuration":
        return entra("openid-configuration", (req) =>
          openidConfiguration(ctx, req, resolveTarget(ctx.world, seg), true),
        );
      case ".well-known/openid-configuration":
        return entra("openid-configuration", (req) =>
          openidConfiguration(ctx, req, resolveTarget(ctx.world, seg), false),
        );
      case "discovery/v2.0/keys":
      case "discovery/keys":
        return entra("keys", (req) => keysDocument(ctx, req));
      case "oauth2/v2.0/token":
        return {
          endpoint: "token",
          family: "entra",
          run: async (req, res) => {
            const target = resolveTarget(ctx.world, seg);
            const r = await tokenEndpoint(ctx, req, target);
            sendJson(res, 200, r.body, {
              "client-request-id": req.correlationId,
              "x-ms-request-id": ctx.world.randomId(),
            });
          },
        };
      case "oauth2/v2.0/devicecode":
        return entra("devicecode", (req) => deviceCodeEndpoint(ctx, req, resolveTarget(ctx.world, seg)));
      case "oauth2/v2.0/authorize":
        return {
          endpoint: "authorize",
          family: "entra-html",
          run: (req, res) => authorizeRequest(ctx, req, res, seg),
        };
      case "oauth2/v2.0/logout":
      case "oauth2/logout":
        return { endpoint: "logout", family: "entra-html", run: (req, res) => logoutRequest(ctx, req, res) };
      case "login":
        return { endpoint: "login", family: "entra-html", run: (req, res) => loginRequest(ctx, req, res) };
    }
    if (n === 3 && b === "userrealm") return entra("userrealm", (req) => userRealm(ctx, req, segments[2]!));
  }
  if (n === 0)
    return {
      endpoint: "other",
      family: "other",
      run: async (_req, res) => sendJson(res, 200, ctx.info()),
    };
  return {
    endpoint: "other",
    family: "other",
    run: async (_req, res) =>
      sendJson(res, 404, {
        error: "not_found",
        error_description: "The azkeep emulator has no endpoint at this path (see docs/emulator.md).",
      }),
  };
}

function takeFault(world: World, endpoint: EndpointName): Fault | undefined {
  const i = world.faults.findIndex((f) => f.endpoint === "*" || f.endpoint === endpoint);
  if (i === -1) return undefined;
  const f = world.faults[i]!;
  if (f.remaining !== undefined) {
    f.remaining -= 1;
    if (f.remaining <= 0) world.faults.splice(i, 1);
  }
  return f;
}

function faultResponse(ctx: CoreContext, r: Route, req: Req, res: ServerResponse, f: Fault): void {
  const status = f.type === "throttle" ? 429 : (f.status ?? 503);
  const headers: Record<string, string> = {};
  if (f.type === "throttle" || f.retryAfter !== undefined) headers["Retry-After"] = String(f.retryAfter ?? 1);
  if (r.family === "arm") {
    sendJson(
      res,
      status,
      {
        error: {
          code: status === 429 ? "TooManyRequests" : "ServiceUnavailable",
          message:
            status === 429
              ? "The request was throttled (injected fault)."
              : "The service is unavailable (injected fault).",
        },
      },
      headers,
    );
    return;
  }
  const e = new EntraError(
    status === 429 ? 50196 : 90033,
    status === 429 ? "temporarily_unavailable" : "server_error",
    status === 429
      ? `The server throttled the request (injected fault). Retry after ${headers["Retry-After"]} seconds.`
      : "A transient error has occurred. Please try again. (injected fault)",
    status,
  );
  sendJson(
    res,
    status,
    entraErrorBody(e, { origin: req.origin, correlationId: req.correlationId, now: ctx.world.now() }),
    headers,
  );
}

function errorResponse(
  ctx: CoreContext,
  r: Route | undefined,
  req: Req | undefined,
  res: ServerResponse,
  e: unknown,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const origin = req?.origin ?? `http://${ctx.fallbackHost()}`;
  const correlationId = req?.correlationId ?? ctx.world.randomId();
  const family = r?.family ?? "entra";
  if (e instanceof ArmError) {
    sendJson(res, e.status, { error: { code: e.code, message: e.message } }, e.headers);
    return;
  }
  if (e instanceof IdentityError) {
    sendJson(res, e.status, e.body);
    return;
  }
  if (e instanceof ControlError) {
    sendJson(
      res,
      e.status,
      { error: "control_error", message: e.message },
      e.status === 401 ? { "WWW-Authenticate": 'Bearer realm="azkeep-emulator-control"' } : {},
    );
    return;
  }
  if (e instanceof BadRequest) {
    if (family === "arm") {
      sendJson(res, e.status, { error: { code: "BadRequest", message: e.message } });
      return;
    }
    const ee = new EntraError(900144, "invalid_request", e.message, e.status);
    sendJson(res, e.status, entraErrorBody(ee, { origin, correlationId, now: ctx.world.now() }));
    return;
  }
  if (e instanceof EntraError) {
    if (family === "entra-html") {
      sendHtml(res, e.status === 401 ? 400 : e.status, errorPage(ctx, `AADSTS${e.code}`, e.message));
      return;
    }
    sendJson(res, e.status, entraErrorBody(e, { origin, correlationId, now: ctx.world.now() }), {
      "client-request-id": correlationId,
    });
    return;
  }
  // A bug in the emulator: still an Entra-shaped answer, never a crash.
  ctx.world.record({
    time: new Date(ctx.world.now()).toISOString(),
    method: req?.method ?? "?",
    endpoint: "other",
    path: `(internal error: ${e instanceof Error ? e.message.slice(0, 200) : "unknown"})`,
    host: "",
    status: 500,
  });
  const ee = new EntraError(90000, "server_error", "The emulator failed to handle the request.", 500);
  sendJson(res, 500, entraErrorBody(ee, { origin, correlationId, now: ctx.world.now() }));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Builds the request handler over a context. */
export function createHandler(
  ctx: CoreContext,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (raw, res) => {
    let req: Req | undefined;
    let r: Route | undefined;
    try {
      const https = isHttps(raw);
      const t = parseTarget(raw.url ?? "/", ctx.fallbackHost(), raw.headers.host, https);
      r = route(ctx, t.segments);
      req = {
        raw,
        method: (raw.method ?? "GET").toUpperCase(),
        segments: t.segments,
        path: t.path,
        query: t.query,
        origin: t.origin,
        https,
        headers: raw.headers,
        body: "",
        correlationId: correlationIdOf(raw, () => ctx.world.randomId()),
      };
      if (r.family !== "control") {
        const entry = {
          time: new Date(ctx.world.now()).toISOString(),
          method: req.method,
          endpoint: r.endpoint,
          path: t.path.slice(0, 300),
          host: new URL(t.origin).host,
          status: 0,
        } as Parameters<World["record"]>[0];
        const seg0 = t.segments[0];
        if (r.family === "entra" || r.family === "entra-html")
          if (seg0 && t.segments.length > 1) entry.tenant = seg0.slice(0, 100);
        ctx.world.record(entry);
        res.once("finish", () => (entry.status = res.statusCode));
        res.once("close", () => {
          if (entry.status === 0) entry.status = res.writableFinished ? res.statusCode : -1;
        });
        const fault = takeFault(ctx.world, r.endpoint);
        if (fault) {
          entry.fault = fault.type;
          if (fault.type === "delay") await sleep(fault.delayMs ?? 0);
          else if (fault.type === "reset") {
            raw.socket.destroy();
            return;
          } else {
            faultResponse(ctx, r, req, res, fault);
            raw.resume();
            return;
          }
        }
        if (req.method !== "GET" && req.method !== "HEAD") req.body = await readBody(raw);
        if (r.endpoint === "token") {
          const form = new URLSearchParams(req.body);
          const gt = form.get("grant_type");
          if (gt) entry.grantType = gt.slice(0, 100);
          const cid = form.get("client_id");
          if (cid) entry.clientId = cid.slice(0, 100).toLowerCase();
        }
      } else if (req.method !== "GET" && req.method !== "HEAD") req.body = await readBody(raw);
      await r.run(req, res);
    } catch (e) {
      errorResponse(ctx, r, req, res, e);
    }
  };
}

export { armJson, entraJson };
