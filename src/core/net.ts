/**
 * Network settings and the fetch azkeep's Context uses: `HTTPS_PROXY` / `HTTP_PROXY` /
 * `NO_PROXY` (lower-case too) and `NODE_EXTRA_CA_CERTS`.
 *
 * Why not Node's global fetch (undici): its first request costs ~30 MiB of resident memory
 * (measured here: one request with global fetch 84 MiB peak RSS, with `node:http` plus a
 * `Response` 53 MiB; undici's EnvHttpProxyAgent through a proxy 105 MiB), which made a sign-in
 * use twice the memory of `az login`. This small fetch over `node:http(s)` covers what azkeep
 * sends (JSON and form bodies, no compression) and tunnels HTTPS through a proxy with CONNECT,
 * as curl and Python requests do. See docs/signin.md ("Network").
 *
 * `NODE_EXTRA_CA_CERTS` is trusted by Node itself when it is set at process start; it is also
 * applied explicitly when the Context's environment names a different file (library users and
 * in-process tests). `node:http`, `node:https` and `node:tls` are loaded on the first request,
 * so commands that never reach the network (a cached get-access-token) do not pay for them.
 */
import { readFileSync } from "node:fs";
import type * as NodeHttp from "node:http";
import type { Agent, IncomingMessage, RequestOptions } from "node:http";
import type * as NodeHttps from "node:https";
import type * as NodeTls from "node:tls";
import type { Socket } from "node:net";
import type { Env } from "./context.js";
import { AzkeepError } from "./errors.js";

export function proxySettings(env: Env): { httpProxy: string; httpsProxy: string; noProxy: string } {
  return {
    httpProxy: env.http_proxy ?? env.HTTP_PROXY ?? "",
    httpsProxy: env.https_proxy ?? env.HTTPS_PROXY ?? "",
    noProxy: env.no_proxy ?? env.NO_PROXY ?? "",
  };
}

export function usesProxy(env: Env): boolean {
  const p = proxySettings(env);
  return Boolean(p.httpProxy || p.httpsProxy);
}

/** 127.0.0.0/8, ::1 and `localhost`: the only hosts a credential may reach over plain http. */
export function isLoopbackHost(hostname: string): boolean {
  const n = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return n === "localhost" || n.endsWith(".localhost") || n === "::1" || /^127(\.\d{1,3}){3}$/.test(n);
}

/** Whether `NO_PROXY` exempts `url` (curl's rules: `*`, exact host, domain suffix, optional port). */
export function bypassesProxy(url: URL, noProxy: string): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return true;
    // A bare IPv6 address has several colons and no port; `[::1]:8080` has both.
    const bareIpv6 = !entry.startsWith("[") && (entry.match(/:/g) ?? []).length > 1;
    const m = bareIpv6 ? [entry, entry, undefined] : /^\[?(.*?)\]?(?::(\d+))?$/.exec(entry);
    let name = (m?.[1] ?? entry).replace(/^\*?\./, ".");
    if (m?.[2] && m[2] !== port) continue;
    if (name.startsWith(".")) {
      if (host.endsWith(name) || host === name.slice(1)) return true;
      continue;
    }
    name = name.replace(/^\[|\]$/g, "");
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** The proxy for `url`, or undefined to connect directly. */
export function proxyFor(url: URL, env: Env): URL | undefined {
  const p = proxySettings(env);
  const proxy = url.protocol === "https:" ? p.httpsProxy || p.httpProxy : p.httpProxy;
  if (!proxy || bypassesProxy(url, p.noProxy)) return undefined;
  try {
    return new URL(proxy.includes("://") ? proxy : `http://${proxy}`);
  } catch {
    throw new AzkeepError(
      "bad_input",
      `The proxy address '${proxy}' (HTTPS_PROXY / HTTP_PROXY) is not a URL.`,
      {
        hint: "Set it like http://proxy.example.com:3128, or unset it.",
      },
    );
  }
}

function readCa(path: string, rootCertificates: readonly string[]): string[] {
  try {
    return [...rootCertificates, readFileSync(path, "utf8")];
  } catch (e) {
    throw new AzkeepError("bad_input", `Cannot read NODE_EXTRA_CA_CERTS (${path}).`, {
      cause: e,
      hint: "Point NODE_EXTRA_CA_CERTS at a PEM file with the CA certificate(s) to trust, or unset it.",
    });
  }
}

export interface NetworkFetchOptions {
  env: Env;
  /** Kept for callers that pass Node's global fetch; requests go through `node:http(s)`. */
  base?: typeof fetch;
  /** True when Node already trusts `env.NODE_EXTRA_CA_CERTS` (it was set at process start). */
  extraCaTrustedByNode: boolean;
}

type FetchInput = Parameters<typeof fetch>[0];

interface Loaded {
  http: typeof NodeHttp;
  https: typeof NodeHttps;
  tls: typeof NodeTls;
  httpAgent: Agent;
  httpsAgent: Agent;
  ca: string[] | undefined;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function headerRecord(h: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  if (h instanceof Headers) h.forEach((v, k) => (out[k.toLowerCase()] = v));
  else if (Array.isArray(h)) for (const [k, v] of h) out[String(k).toLowerCase()] = String(v);
  else for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = String(v);
  return out;
}

function bodyBytes(body: RequestInit["body"], headers: Record<string, string>): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof URLSearchParams) {
    headers["content-type"] ??= "application/x-www-form-urlencoded;charset=UTF-8";
    return Buffer.from(body.toString());
  }
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError("azkeep's fetch sends only string, form and byte bodies");
}

function fetchFailed(cause: unknown): TypeError {
  return new TypeError("fetch failed", { cause });
}

function toResponse(res: IncomingMessage, body: Buffer, method: string): Response {
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i] as string, raw[i + 1] as string);
    } catch {
      /* a header value fetch would refuse too */
    }
  }
  const status = res.statusCode ?? 502;
  const empty = method === "HEAD" || status === 204 || status === 205 || status === 304;
  return new Response(empty ? null : body, { status, statusText: res.statusMessage ?? "", headers });
}

/** The proxy's address without its credentials, for messages. */
export function proxyLabel(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

/** Marks a fetch failure as the proxy's: the cause gains `proxy` (its address, no credentials). */
function viaProxy(e: unknown, proxy: URL): unknown {
  if (e instanceof TypeError && e.cause && typeof e.cause === "object")
    Object.assign(e.cause, { proxy: proxyLabel(proxy) });
  else if (e instanceof TypeError) Object.assign(e, { cause: { proxy: proxyLabel(proxy) } });
  return e;
}

/**
 * Why a request failed, in words, naming the proxy when it was the proxy that failed (refused
 * the connection, the tunnel, or asked for credentials): "through the proxy http://p:3128: …".
 * `e` is what the Context's fetch threw.
 */
export function describeFetchFailure(e: unknown): { why: string; proxy: string | undefined } {
  const err = e as {
    name?: string;
    message?: string;
    cause?: { code?: string; message?: string; proxy?: string };
  };
  if (err?.name === "TimeoutError") return { why: "timed out", proxy: undefined };
  const cause = err?.cause;
  const code = cause?.code;
  const why =
    code === "EPROXY" || code === "EREDIRECT"
      ? (cause?.message ?? code)
      : (code ?? cause?.message ?? err?.message ?? "failed");
  return { why, proxy: cause?.proxy };
}

/** "Cannot reach HOST: WHY." or "Cannot reach HOST through the proxy P: WHY." */
export function cannotReach(what: string, e: unknown): string {
  const { why, proxy } = describeFetchFailure(e);
  return proxy ? `Cannot reach ${what} through the proxy ${proxy}: ${why}.` : `Cannot reach ${what}: ${why}.`;
}

/** Opens a CONNECT tunnel through `proxy` to `host:port` and returns the TLS socket on it. */
function tunnel(l: Loaded, proxy: URL, target: URL, signal: AbortSignal | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const port = target.port || "443";
    const headers: Record<string, string> = { host: `${target.hostname}:${port}` };
    if (proxy.username) {
      const auth = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      headers["proxy-authorization"] = `Basic ${Buffer.from(auth).toString("base64")}`;
    }
    const mod = proxy.protocol === "https:" ? l.https : l.http;
    const req = mod.request({
      host: proxy.hostname.replace(/^\[|\]$/g, ""),
      port: proxy.port || (proxy.protocol === "https:" ? 443 : 80),
      method: "CONNECT",
      path: `${target.hostname}:${port}`,
      headers,
      agent: false,
      ...(signal ? { signal } : {}),
    });
    req.once("connect", (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(
          fetchFailed(
            Object.assign(new Error(`the proxy refused the tunnel (HTTP ${res.statusCode})`), {
              code: "EPROXY",
            }),
          ),
        );
        return;
      }
      const tlsSocket = l.tls.connect({
        socket,
        servername: target.hostname.replace(/^\[|\]$/g, ""),
        ALPNProtocols: ["http/1.1"],
        ...(l.ca ? { ca: l.ca } : {}),
      });
      tlsSocket.once("secureConnect", () => resolve(tlsSocket));
      tlsSocket.once("error", (e) => reject(fetchFailed(e)));
    });
    req.once("error", (e) => reject(e.name === "AbortError" ? e : fetchFailed(e)));
    req.end();
  });
}

async function send(l: Loaded, env: Env, url: URL, init: RequestInit, redirects: number): Promise<Response> {
  const signal = init.signal ?? undefined;
  if (signal?.aborted) throw signal.reason;
  const method = (init.method ?? "GET").toUpperCase();
  const headers = headerRecord(init.headers);
  const body = bodyBytes(init.body, headers);
  if (body) headers["content-length"] = String(body.length);
  headers["accept-encoding"] = "identity";
  headers["user-agent"] ??= "azkeep";
  const proxy = proxyFor(url, env);
  const https = url.protocol === "https:";
  if (!https && url.protocol !== "http:")
    throw fetchFailed(new Error(`unsupported protocol ${url.protocol}`));
  const options: RequestOptions & { ca?: string[]; servername?: string } = { method, headers };
  if (proxy && !https) {
    // Plain HTTP through a proxy: the absolute URI goes to the proxy (RFC 7230 §5.3.2).
    options.host = proxy.hostname.replace(/^\[|\]$/g, "");
    options.port = proxy.port || 80;
    options.path = url.href;
    options.agent = false;
    if (proxy.username) {
      const auth = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      headers["proxy-authorization"] = `Basic ${Buffer.from(auth).toString("base64")}`;
    }
  } else {
    options.host = url.hostname.replace(/^\[|\]$/g, "");
    options.port = url.port || (https ? 443 : 80);
    options.path = `${url.pathname}${url.search}`;
    if (https) {
      options.servername = options.host;
      if (l.ca) options.ca = l.ca;
    }
    if (proxy) {
      const socket = await tunnel(l, proxy, url, signal).catch((e: unknown) => {
        throw viaProxy(e, proxy);
      });
      // No `agent` at all: with `agent: false` Node makes a new Agent and ignores createConnection.
      options.createConnection = () => socket;
    } else options.agent = https ? l.httpsAgent : l.httpAgent;
  }
  const res = await new Promise<Response>((resolve, reject) => {
    const req = (https ? l.https : l.http).request({ ...options, ...(signal ? { signal } : {}) }, (m) => {
      const chunks: Buffer[] = [];
      m.on("data", (c: Buffer) => chunks.push(c));
      m.on("end", () => resolve(toResponse(m, Buffer.concat(chunks), method)));
      m.on("error", (e) => reject(fetchFailed(e)));
    });
    req.once("error", (e) => reject(signal?.aborted ? (signal.reason as Error) : fetchFailed(e)));
    req.end(body);
  }).catch((e: unknown) => {
    // Plain http through the proxy: a refused connection is the proxy's.
    throw proxy && !https ? viaProxy(e, proxy) : e;
  });
  if (proxy && !https && res.status === 407) {
    // The proxy wants credentials (RFC 9110 §15.5.8): say so, as for a refused CONNECT.
    throw viaProxy(
      fetchFailed(Object.assign(new Error("the proxy asked for credentials (HTTP 407)"), { code: "EPROXY" })),
      proxy,
    );
  }
  const location = res.headers.get("location");
  if (REDIRECTS.has(res.status) && location && init.redirect !== "manual") {
    if (init.redirect === "error" || redirects >= 5) throw fetchFailed(new Error("too many redirects"));
    await res.body?.cancel().catch(() => {});
    const step = redirectStep(url, location, res.status, method, body !== undefined);
    const nextHeaders = step.crossOrigin ? withoutCredentials(headers) : { ...headers };
    // Recomputed for the next hop; the proxy's credential is added again only for the proxy.
    delete nextHeaders["content-length"];
    delete nextHeaders["proxy-authorization"];
    if (!step.keepBody) delete nextHeaders["content-type"];
    const nextInit: RequestInit = {
      ...init,
      method: step.method,
      headers: nextHeaders,
      body: step.keepBody ? (init.body ?? null) : null,
    };
    return send(l, env, step.url, nextInit, redirects + 1);
  }
  return res;
}

/**
 * Headers that carry a credential: never sent to another origin on a redirect. Threat: a
 * server (or whoever edited an endpoint) answering 302 to its own host to collect the bearer
 * token, a client secret or an API key.
 */
export const CREDENTIAL_HEADERS: readonly string[] = [
  "authorization",
  "proxy-authorization",
  "cookie",
  "x-ms-authorization-auxiliary",
  "x-identity-header",
  "x-api-key",
  "api-key",
  "ocp-apim-subscription-key",
  "metadata",
];

/** `headers` without any credential header (case-insensitive). */
export function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (!CREDENTIAL_HEADERS.includes(k.toLowerCase())) out[k] = v;
  return out;
}

/** `a` and `b` have the same scheme, host and port. */
export function sameOrigin(a: URL, b: URL): boolean {
  return a.origin === b.origin;
}

export interface RedirectStep {
  url: URL;
  method: string;
  /** 307/308 resend the body; 301/302/303 turn the request into a GET without one. */
  keepBody: boolean;
  /** The target is another origin: credentials must be dropped. */
  crossOrigin: boolean;
}

/**
 * The one redirect rule of azkeep, for the Context's fetch and for `azkeep rest`'s own loop:
 * never from https to http (a token or body would cross the network in clear), never another
 * scheme, and never a request body to another origin (a 307/308 of a token request or a PUT
 * would carry a secret or the user's data there: refused rather than followed). Callers drop
 * credentials when `crossOrigin` is true.
 */
export function redirectStep(
  from: URL,
  location: string,
  status: number,
  method: string,
  hasBody: boolean,
): RedirectStep {
  let url: URL;
  try {
    url = new URL(location, from);
  } catch {
    throw fetchFailed(
      Object.assign(new Error(`the server redirected to an invalid URL`), { code: "EREDIRECT" }),
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw fetchFailed(
      Object.assign(new Error(`refused a redirect to ${url.protocol}`), { code: "EREDIRECT" }),
    );
  if (from.protocol === "https:" && url.protocol === "http:")
    throw fetchFailed(
      Object.assign(new Error(`refused a redirect from https to http (${url.host})`), {
        code: "EREDIRECT",
      }),
    );
  const keepBody = status === 307 || status === 308;
  const crossOrigin = !sameOrigin(from, url);
  if (keepBody && hasBody && crossOrigin)
    throw fetchFailed(
      Object.assign(new Error(`refused to resend the request body to another host (${url.host})`), {
        code: "EREDIRECT",
      }),
    );
  const m = keepBody ? method : method === "HEAD" ? "HEAD" : "GET";
  return { url, method: m, keepBody, crossOrigin };
}

/**
 * A fetch that honours the proxy variables and `NODE_EXTRA_CA_CERTS` of `env`, over
 * `node:http(s)` (see the module comment for why). Errors look like fetch's: a `TypeError`
 * "fetch failed" whose `cause` has the system error `code`; aborts reject with the signal's reason.
 */
export function createNetworkFetch(opts: NetworkFetchOptions): typeof fetch {
  const { env } = opts;
  const caFile = env.NODE_EXTRA_CA_CERTS && !opts.extraCaTrustedByNode ? env.NODE_EXTRA_CA_CERTS : undefined;
  let loaded: Promise<Loaded> | undefined;
  const load = async (): Promise<Loaded> => {
    const [http, https, tls] = await Promise.all([
      import("node:http"),
      import("node:https"),
      import("node:tls"),
    ]);
    return {
      http,
      https,
      tls,
      httpAgent: new http.Agent({ keepAlive: true }),
      httpsAgent: new https.Agent({ keepAlive: true }),
      ca: caFile ? readCa(caFile, tls.rootCertificates) : undefined,
    };
  };
  return async (input: FetchInput, init?: RequestInit): Promise<Response> => {
    loaded ??= load();
    const l = await loaded;
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    const merged: RequestInit =
      input instanceof Request && !init
        ? {
            method: input.method,
            headers: input.headers,
            body: input.body ? await input.arrayBuffer() : null,
            signal: input.signal,
          }
        : { ...init };
    return send(l, env, url, merged, 0);
  };
}
