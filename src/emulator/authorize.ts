/**
 * Interactive sign-in: `/{tenant}/oauth2/v2.0/authorize` (authorization code + PKCE S256,
 * `state`, `nonce`, redirect only to a loopback `http://localhost:<port>` / `127.0.0.1` or a
 * registered URI), the device code page `/devicelogin`, the form posts of both (`/{tenant}/login`)
 * and logout. A sign-in moves through steps — sign-in, MFA when the tenant requires it,
 * consent when the app needs it — held server-side in a flow keyed by an unguessable id, so a
 * page can only post the step it was shown (MFA cannot be skipped by posting `consent`).
 */
import type { ServerResponse } from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import { E, EntraError, entraErrorBody } from "./errors.js";
import { resolveTarget, userTenant, type Target } from "./entra.js";
import { formOf, parseCookies, redirect, sendHtml, type Req } from "./http.js";
import {
  consentPage,
  deviceCodePage,
  deviceDonePage,
  errorPage,
  formPostPage,
  mfaPage,
  signInPage,
  signedOutPage,
} from "./pages.js";
import type { SeedApp, SeedUser } from "./seed.js";
import type { CoreContext } from "./server.js";
import { parseClaims, parseScope } from "./tokens.js";
import type { Amr } from "./world.js";

type Step = "signin" | "mfa" | "consent";
type ResponseMode = "query" | "fragment" | "form_post";

interface Flow {
  id: string;
  kind: "authorize" | "device";
  segment: string;
  target: Target;
  app: SeedApp;
  scope: string;
  claims: string | undefined;
  // authorize only
  redirectUri: string;
  responseMode: ResponseMode;
  state: string | undefined;
  nonce: string | undefined;
  codeChallenge: string | undefined;
  wantClientInfo: boolean;
  prompt: string | undefined;
  loginHint: string | undefined;
  // device only
  deviceCode: string | undefined;
  step: Step;
  user: SeedUser | undefined;
  amr: Amr;
  authTime: number;
  consented: boolean;
  failures: number;
  expiresAt: number;
}

const SESSION_COOKIE = "ESTSAUTH";
const FLOW_LIFETIME_MS = 15 * 60_000;
const MAX_FAILURES = 10;
const PROMPTS = new Set(["none", "login", "consent", "select_account"]);
const CHALLENGE = /^[A-Za-z0-9_-]{43,128}$/;

function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

/**
 * Where a code may be sent: a registered redirect URI, or any loopback `http://localhost:<port>`
 * / `http://127.0.0.1:<port>` (as Entra allows for native apps). Anything else could hand the
 * code to another site.
 */
function redirectAllowed(app: SeedApp, uri: string): boolean {
  if ((app.redirectUris ?? []).includes(uri)) return true;
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return false;
  }
  if (u.protocol !== "http:" || u.hash !== "" || uri.includes("#") || u.username !== "" || u.password !== "")
    return false;
  return u.hostname === "localhost" || u.hostname === "127.0.0.1" || u.hostname === "[::1]";
}

function redirectInvalid(uri: string, clientId: string): EntraError {
  return new EntraError(
    50011,
    "invalid_request",
    `The redirect URI '${uri.slice(0, 300)}' specified in the request does not match the redirect URIs configured for the application '${clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal, or is a loopback address (http://localhost:<port>).`,
  );
}

function flows(ctx: CoreContext): Map<string, Flow> {
  return ctx.world.flows as Map<string, Flow>;
}

function newFlow(ctx: CoreContext, f: Omit<Flow, "id" | "expiresAt" | "failures">): Flow {
  const now = ctx.world.now();
  const map = flows(ctx);
  for (const [k, v] of map) if (v.expiresAt < now) map.delete(k);
  if (map.size >= 10_000) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
  const flow: Flow = { ...f, id: ctx.world.randomToken(24), expiresAt: now + FLOW_LIFETIME_MS, failures: 0 };
  map.set(flow.id, flow);
  return flow;
}

function cookieHeader(req: Req, value: string, maxAge?: number): string {
  return (
    `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Lax` +
    (maxAge !== undefined ? `; Max-Age=${maxAge}` : "") +
    (req.https ? "; Secure" : "")
  );
}

function currentSession(ctx: CoreContext, req: Req) {
  const id = parseCookies(req).get(SESSION_COOKIE);
  if (!id) return undefined;
  const s = ctx.world.sessions.get(id);
  if (!s) return undefined;
  const validFrom = ctx.world.tokensValidFrom.get(s.userUpn.toLowerCase());
  if (s.expiresAt <= ctx.world.now() || (validFrom !== undefined && s.authTime * 1000 < validFrom)) {
    ctx.world.sessions.delete(id);
    return undefined;
  }
  return { id, ...s };
}

function describePermissions(ctx: CoreContext, flow: Flow): string[] {
  const out: string[] = [];
  try {
    const s = parseScope(ctx.world, flow.scope, "");
    if (!s.resource.startsWith("00000003")) {
      for (const p of s.permissions) out.push(`Access ${s.resource} as you (${p})`);
    }
    if (s.oidc.includes("openid") || s.oidc.includes("profile"))
      out.push("Sign you in and read your profile");
    if (s.oidc.includes("offline_access")) out.push("Maintain access to data you have given it access to");
  } catch {
    /* the scope was checked when the flow started */
  }
  return out;
}

function render(
  ctx: CoreContext,
  res: ServerResponse,
  flow: Flow,
  error?: string,
  headers: Record<string, string> = {},
): void {
  const common = {
    action: `/${encodeURIComponent(flow.segment)}/login`,
    flow: flow.id,
    step: flow.step,
    appName: flow.app.displayName,
    tenantName: flow.target.kind === "tenant" ? flow.target.tenant.displayName : undefined,
    error,
  };
  const status = error ? 400 : 200;
  switch (flow.step) {
    case "signin":
      sendHtml(res, status, signInPage({ ...common, username: flow.loginHint ?? "" }), headers);
      return;
    case "mfa":
      sendHtml(res, status, mfaPage({ ...common, username: flow.user?.upn ?? "" }), headers);
      return;
    case "consent":
      sendHtml(
        res,
        status,
        consentPage({
          ...common,
          username: flow.user?.upn ?? "",
          permissions: describePermissions(ctx, flow),
          device: flow.kind === "device",
          unverified: flow.app.tenant !== undefined,
        }),
        headers,
      );
      return;
  }
}

function redirectError(
  ctx: CoreContext,
  req: Req,
  res: ServerResponse,
  flow: Pick<Flow, "redirectUri" | "responseMode" | "state">,
  e: EntraError,
  headers: Record<string, string> = {},
): void {
  const body = entraErrorBody(e, {
    origin: req.origin,
    correlationId: req.correlationId,
    now: ctx.world.now(),
  });
  respond(
    ctx,
    res,
    flow,
    { error: e.error, error_description: String(body.error_description), error_uri: String(body.error_uri) },
    headers,
  );
}

function respond(
  ctx: CoreContext,
  res: ServerResponse,
  flow: Pick<Flow, "redirectUri" | "responseMode" | "state">,
  params: Record<string, string>,
  headers: Record<string, string> = {},
): void {
  const all = { ...params, ...(flow.state !== undefined ? { state: flow.state } : {}) };
  if (flow.responseMode === "form_post") {
    const nonce = ctx.world.randomToken(16);
    sendHtml(res, 200, formPostPage(flow.redirectUri, all, nonce), { ...headers, "x-script-nonce": nonce });
    return;
  }
  if (flow.responseMode === "fragment") {
    redirect(res, `${flow.redirectUri}#${new URLSearchParams(all).toString()}`, headers);
    return;
  }
  const u = new URL(flow.redirectUri);
  for (const [k, v] of Object.entries(all)) u.searchParams.append(k, v);
  redirect(res, u.toString(), headers);
}

/** Decides the next step of a flow and shows it, or finishes the sign-in. */
function advance(
  ctx: CoreContext,
  req: Req,
  res: ServerResponse,
  flow: Flow,
  headers: Record<string, string> = {},
): void {
  const w = ctx.world;
  if (!flow.user) {
    flow.step = "signin";
    render(ctx, res, flow, undefined, headers);
    return;
  }
  const user = flow.user;
  const tenant = userTenant(ctx, user, flow.target);
  if (w.userOid(user, tenant.id) === undefined) {
    const e = E.userNotInTenant(user.upn, tenant.id);
    if (flow.prompt === "none" && flow.kind === "authorize") {
      redirectError(ctx, req, res, flow, e, headers);
      return;
    }
    flow.user = undefined;
    flow.step = "signin";
    render(ctx, res, flow, `AADSTS${e.code}: ${e.message}`, headers);
    return;
  }
  if (w.mfaRequired(user, tenant.id) && !flow.amr.includes("mfa")) {
    if (flow.prompt === "none" && flow.kind === "authorize") {
      redirectError(ctx, req, res, flow, E.mfaRequired("the application"), headers);
      return;
    }
    flow.step = "mfa";
    render(ctx, res, flow, undefined, headers);
    return;
  }
  const consentKey = `${user.upn.toLowerCase()}|${flow.app.clientId}`;
  const needsConsent =
    flow.kind === "device" ||
    flow.prompt === "consent" ||
    (!flow.app.preConsented && !w.consents.has(consentKey));
  if (needsConsent && !flow.consented) {
    if (flow.prompt === "none" && flow.kind === "authorize") {
      redirectError(ctx, req, res, flow, E.consentRequired(flow.app.clientId), headers);
      return;
    }
    flow.step = "consent";
    render(ctx, res, flow, undefined, headers);
    return;
  }
  flows(ctx).delete(flow.id);
  if (flow.kind === "device") {
    const rec = w.deviceCodes.get(flow.deviceCode ?? "");
    if (!rec || rec.status !== "pending" || w.now() >= rec.expiresAt) {
      sendHtml(
        res,
        400,
        errorPage(ctx, "AADSTS70020", "This device code has expired. Start again on your device."),
        headers,
      );
      return;
    }
    rec.status = "approved";
    rec.userUpn = user.upn;
    rec.amr = [...flow.amr];
    sendHtml(res, 200, deviceDonePage(flow.app.displayName, true), headers);
    return;
  }
  const code = `1.A${w.randomToken(64)}`;
  w.authCodes.set(code, {
    clientId: flow.app.clientId,
    redirectUri: flow.redirectUri,
    userUpn: user.upn,
    tenantId: tenant.id,
    scope: flow.scope,
    nonce: flow.nonce,
    codeChallenge: flow.codeChallenge,
    codeChallengeMethod: flow.codeChallenge ? "S256" : undefined,
    claims: flow.claims,
    amr: [...flow.amr],
    authTime: flow.authTime,
    expiresAt: w.now() + w.lifetimes.authCode * 1000,
    redeemed: false,
  });
  if (w.authCodes.size > 20_000) {
    const first = w.authCodes.keys().next().value;
    if (first !== undefined) w.authCodes.delete(first);
  }
  const params: Record<string, string> = { code };
  if (flow.wantClientInfo)
    params.client_info = Buffer.from(JSON.stringify({ uid: user.objectId, utid: user.homeTenant })).toString(
      "base64url",
    );
  params.session_state = w.randomId();
  respond(ctx, res, flow, params, headers);
}

/** `GET|POST /{tenant}/oauth2/v2.0/authorize` */
export async function authorizeRequest(
  ctx: CoreContext,
  req: Req,
  res: ServerResponse,
  segment: string,
): Promise<void> {
  if (req.method !== "GET" && req.method !== "POST") throw E.postOnly(req.method);
  const p = req.method === "POST" ? formOf(req) : req.query;
  const w = ctx.world;
  // Until client and redirect URI are known good, errors are shown as a page: redirecting
  // them to an unchecked URI would make the emulator an open redirector.
  const target = resolveTarget(w, segment);
  const clientId = p.get("client_id");
  if (!clientId) throw E.missingParam("client_id");
  const app = w.app(clientId);
  if (!app)
    throw E.appNotFound(clientId.slice(0, 100), target.kind === "tenant" ? target.tenant.id : target.segment);
  if (target.kind === "tenant" && !w.appUsableIn(app, target.tenant.id))
    throw E.appNotFound(app.clientId, target.tenant.id);
  const redirectUri = p.get("redirect_uri");
  if (!redirectUri) throw E.missingParam("redirect_uri");
  if (!redirectAllowed(app, redirectUri)) throw redirectInvalid(redirectUri, app.clientId);

  const modeParam = p.get("response_mode") ?? "query";
  const responseMode: ResponseMode =
    modeParam === "fragment" || modeParam === "form_post" ? modeParam : "query";
  const state = p.get("state") ?? undefined;
  const base = { redirectUri, responseMode, state };
  const fail = (e: EntraError) => redirectError(ctx, req, res, base, e);

  if (modeParam !== responseMode)
    return fail(
      new EntraError(
        900144,
        "invalid_request",
        `The response_mode '${modeParam.slice(0, 50)}' is not supported; use query, fragment or form_post.`,
      ),
    );
  const responseType = p.get("response_type");
  if (!responseType) return fail(E.missingParam("response_type"));
  if (responseType !== "code")
    return fail(
      new EntraError(
        700054,
        "unsupported_response_type",
        `response_type '${responseType.slice(0, 50)}' is not enabled for the application.`,
      ),
    );
  const scope = p.get("scope");
  let claims: string | undefined;
  try {
    parseScope(w, scope, target.kind === "tenant" ? target.tenant.id : target.segment);
    claims = parseClaims(p.get("claims")).raw;
  } catch (e) {
    if (e instanceof EntraError) return fail(e);
    throw e;
  }
  const challenge = p.get("code_challenge") ?? undefined;
  const method = p.get("code_challenge_method") ?? undefined;
  if (challenge !== undefined || method !== undefined) {
    if (method !== "S256")
      return fail(
        new EntraError(
          50148,
          "invalid_request",
          "The code_challenge_method must be 'S256' (the emulator does not accept 'plain').",
        ),
      );
    if (!challenge || !CHALLENGE.test(challenge))
      return fail(new EntraError(501491, "invalid_request", "Invalid size of Code_Challenge parameter."));
  }
  const prompt = p.get("prompt") ?? undefined;
  if (prompt !== undefined && !PROMPTS.has(prompt))
    return fail(new EntraError(90023, "invalid_request", `Invalid prompt value '${prompt.slice(0, 50)}'.`));

  const flow = newFlow(ctx, {
    kind: "authorize",
    segment: target.kind === "tenant" ? target.tenant.id : target.segment,
    target,
    app,
    scope: scope!,
    claims,
    redirectUri,
    responseMode,
    state,
    nonce: p.get("nonce") ?? undefined,
    codeChallenge: challenge,
    wantClientInfo: p.get("client_info") === "1",
    prompt,
    loginHint: p.get("login_hint")?.slice(0, 256) ?? undefined,
    deviceCode: undefined,
    step: "signin",
    user: undefined,
    amr: [],
    authTime: 0,
    consented: false,
  });
  const session = currentSession(ctx, req);
  if (session && prompt !== "login" && prompt !== "select_account") {
    flow.user = w.user(session.userUpn);
    flow.amr = [...session.amr];
    flow.authTime = session.authTime;
  } else if (prompt === "none") {
    flows(ctx).delete(flow.id);
    return fail(
      new EntraError(50058, "login_required", "A silent sign-in request was sent but no user is signed in."),
    );
  }
  advance(ctx, req, res, flow);
}

/** `POST /{tenant}/login`: the forms of the sign-in, MFA and consent pages. */
export async function loginRequest(ctx: CoreContext, req: Req, res: ServerResponse): Promise<void> {
  if (req.method !== "POST") {
    sendHtml(res, 400, errorPage(ctx, "AADSTS900561", "Start signing in from your application."));
    return;
  }
  const form = formOf(req);
  const w = ctx.world;
  const flow = flows(ctx).get(form.get("flow") ?? "");
  if (!flow || flow.expiresAt <= w.now()) {
    sendHtml(
      res,
      400,
      errorPage(ctx, "AADSTS90014", "This sign-in expired or is unknown. Start again from your application."),
    );
    return;
  }
  // Only the step the page showed is accepted: no skipping MFA or consent.
  if (form.get("step") !== flow.step) {
    render(ctx, res, flow);
    return;
  }
  const failed = (message: string) => {
    flow.failures += 1;
    if (flow.failures >= MAX_FAILURES) {
      flows(ctx).delete(flow.id);
      sendHtml(
        res,
        400,
        errorPage(ctx, "AADSTS50053", "Too many failed attempts. Start again from your application."),
      );
      return;
    }
    render(ctx, res, flow, message);
  };
  switch (flow.step) {
    case "signin": {
      const username = (form.get("username") ?? "").trim();
      const password = form.get("password") ?? "";
      const user = username.includes("@") ? w.user(username) : undefined;
      flow.loginHint = username.slice(0, 256);
      if (!user)
        return failed("AADSTS50034: This username may be incorrect. Make sure you typed it correctly.");
      if (!same(user.password, password))
        return failed("AADSTS50126: Your account or password is incorrect.");
      flow.user = user;
      flow.amr = ["pwd"];
      flow.authTime = w.nowSeconds();
      const sessionId = w.randomToken(32);
      w.sessions.set(sessionId, {
        userUpn: user.upn,
        amr: flow.amr,
        authTime: flow.authTime,
        expiresAt: w.now() + w.lifetimes.session * 1000,
      });
      advance(ctx, req, res, flow, { "Set-Cookie": cookieHeader(req, sessionId) });
      return;
    }
    case "mfa": {
      const otc = (form.get("otc") ?? "").trim();
      if (!flow.user || !same(otc, flow.user.mfaCode ?? "123456"))
        return failed("AADSTS50126: You didn't enter the expected verification code. Please try again.");
      flow.amr = ["pwd", "mfa"];
      const s = currentSession(ctx, req);
      if (s && s.userUpn === flow.user.upn) w.sessions.get(s.id)!.amr = ["pwd", "mfa"];
      advance(ctx, req, res, flow);
      return;
    }
    case "consent": {
      const action = form.get("action");
      if (action === "accept") {
        flow.consented = true;
        if (flow.user) w.consents.add(`${flow.user.upn.toLowerCase()}|${flow.app.clientId}`);
        advance(ctx, req, res, flow);
        return;
      }
      flows(ctx).delete(flow.id);
      if (flow.kind === "device") {
        const rec = w.deviceCodes.get(flow.deviceCode ?? "");
        if (rec && rec.status === "pending") rec.status = "denied";
        sendHtml(res, 200, deviceDonePage(flow.app.displayName, false));
        return;
      }
      redirectError(
        ctx,
        req,
        res,
        flow,
        new EntraError(65004, "access_denied", "User declined to consent to access the app."),
      );
      return;
    }
  }
}

/** `GET|POST /devicelogin`: where a person enters the device code, then signs in. */
export async function deviceLoginRequest(ctx: CoreContext, req: Req, res: ServerResponse): Promise<void> {
  const action = "/devicelogin";
  if (req.method !== "POST") {
    sendHtml(res, 200, deviceCodePage(action));
    return;
  }
  const w = ctx.world;
  const code = (formOf(req).get("otc") ?? "").replace(/[\s-]/g, "").toUpperCase();
  const rec = code ? [...w.deviceCodes.values()].find((d) => d.userCode === code) : undefined;
  if (!rec || rec.status !== "pending" || w.now() >= rec.expiresAt) {
    sendHtml(res, 400, deviceCodePage(action, "That code didn't work. Check the code and try again."));
    return;
  }
  const app = w.app(rec.clientId)!;
  let target: Target;
  try {
    target = resolveTarget(w, rec.tenantSegment);
  } catch {
    target = { kind: "multi", segment: "organizations" };
  }
  const flow = newFlow(ctx, {
    kind: "device",
    segment: rec.tenantSegment,
    target,
    app,
    scope: rec.scope,
    claims: rec.claims,
    redirectUri: "",
    responseMode: "query",
    state: undefined,
    nonce: undefined,
    codeChallenge: undefined,
    wantClientInfo: false,
    prompt: undefined,
    loginHint: undefined,
    deviceCode: rec.deviceCode,
    step: "signin",
    user: undefined,
    amr: [],
    authTime: 0,
    consented: false,
  });
  advance(ctx, req, res, flow);
}

/** `/{tenant}/oauth2/v2.0/logout`: ends the browser session. */
export async function logoutRequest(ctx: CoreContext, req: Req, res: ServerResponse): Promise<void> {
  const s = currentSession(ctx, req);
  if (s) ctx.world.sessions.delete(s.id);
  const clear = { "Set-Cookie": cookieHeader(req, "", 0) };
  const p = req.method === "POST" ? formOf(req) : req.query;
  const back = p.get("post_logout_redirect_uri");
  const allowed = back && [...ctx.world.apps.values()].some((a) => redirectAllowed(a, back));
  if (back && allowed) {
    redirect(res, back, clear);
    return;
  }
  sendHtml(res, 200, signedOutPage(), clear);
}
