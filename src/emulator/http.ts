/**
 * Request parsing and response helpers shared by the emulator's endpoints. Nothing here
 * throws on hostile input: a bad path, header or body becomes a `BadRequest` the router turns
 * into an Entra- or ARM-style error.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";

/** Bodies larger than this are refused (Entra refuses large bodies too). */
export const MAX_BODY = 256 * 1024;

export interface Req {
  raw: IncomingMessage;
  method: string;
  /** Path segments, percent-decoded, empty ones dropped. */
  segments: string[];
  /** The path as sent (without the query). */
  path: string;
  query: URLSearchParams;
  /** `scheme://host[:port]` the client used: issuers and URLs in documents are derived from it. */
  origin: string;
  https: boolean;
  headers: IncomingMessage["headers"];
  /** Raw body text (UTF-8). */
  body: string;
  /** Request id (the client's `client-request-id` when sent, else random). */
  correlationId: string;
}

export class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;
const GUIDISH = /^[0-9A-Za-z-]{1,64}$/;

/** Reads the whole body up to `MAX_BODY`. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > MAX_BODY) {
        done = true;
        reject(new BadRequest("The request body is too large.", 413));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", (e) => {
      if (done) return;
      done = true;
      reject(e);
    });
  });
}

/**
 * Splits the request target. Origin-form (`/path?q`) is what clients send; absolute-form
 * (`http://host/path`) is accepted too, as a proxy would forward it.
 */
export function parseTarget(
  rawUrl: string,
  fallbackHost: string,
  hostHeader: string | undefined,
  https: boolean,
): { segments: string[]; path: string; query: URLSearchParams; origin: string } {
  let target = rawUrl;
  if (/^https?:\/\//i.test(target)) {
    try {
      const u = new URL(target);
      target = `${u.pathname}${u.search}`;
    } catch {
      throw new BadRequest("The request target is not a valid URL.");
    }
  }
  if (!target.startsWith("/")) throw new BadRequest("The request target must be a path.");
  const q = target.indexOf("?");
  const path = q === -1 ? target : target.slice(0, q);
  const query = new URLSearchParams(q === -1 ? "" : target.slice(q + 1));
  const segments: string[] = [];
  for (const s of path.split("/")) {
    if (s === "") continue;
    try {
      segments.push(decodeURIComponent(s));
    } catch {
      throw new BadRequest("The request path is not validly percent-encoded.");
    }
  }
  // The Host header ends up in issuers and HTML: only a well-formed host:port is trusted.
  const host = hostHeader && HOST.test(hostHeader) ? hostHeader.toLowerCase() : fallbackHost;
  const scheme = https ? "https" : "http";
  const defaultPort = https ? ":443" : ":80";
  const origin = `${scheme}://${host.endsWith(defaultPort) ? host.slice(0, -defaultPort.length) : host}`;
  return { segments, path, query, origin };
}

export function isHttps(req: IncomingMessage): boolean {
  return (req.socket as Partial<TLSSocket>).encrypted === true;
}

export function correlationIdOf(req: IncomingMessage, random: () => string): string {
  const sent = req.headers["client-request-id"] ?? req.headers["x-ms-client-request-id"];
  const v = Array.isArray(sent) ? sent[0] : sent;
  return v && GUIDISH.test(v) ? v : random();
}

const SECURITY_HEADERS = {
  "Cache-Control": "no-store",
  Pragma: "no-cache",
  "X-Content-Type-Options": "nosniff",
} as const;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendHtml(
  res: ServerResponse,
  status: number,
  html: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "Content-Type": "text/html; charset=utf-8",
    "Content-Length": Buffer.byteLength(html),
    // Sign-in and consent pages must not be framed (clickjacking) and run no foreign script.
    "X-Frame-Options": "DENY",
    "Content-Security-Policy":
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'" +
      (headers["x-script-nonce"] ? `; script-src 'nonce-${headers["x-script-nonce"]}'` : ""),
    ...Object.fromEntries(Object.entries(headers).filter(([k]) => k !== "x-script-nonce")),
  });
  res.end(html);
}

export function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(302, { ...SECURITY_HEADERS, Location: location, "Content-Length": 0, ...headers });
  res.end();
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { ...SECURITY_HEADERS, "Content-Length": 0, ...headers });
  res.end();
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Form body (`application/x-www-form-urlencoded`), whatever the content type says. */
export function formOf(req: Req): URLSearchParams {
  return new URLSearchParams(req.body);
}

/** One header value (the first when repeated). */
export function header(req: Req, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function parseCookies(req: Req): Map<string, string> {
  const out = new Map<string, string>();
  const raw = header(req, "cookie");
  if (!raw) return out;
  for (const part of raw.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

/** Listens on `host:port` (0: a free port); rejects when the address is taken. */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Stops listening and drops open (keep-alive) connections; a server not listening is done. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
