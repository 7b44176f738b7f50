/**
 * `azkeep exec`'s per-run credential endpoint: the managed-identity protocols every Azure SDK
 * already speaks, on 127.0.0.1 for the lifetime of one child process.
 *
 * Routes (the secret `S` is 32 random bytes, hex):
 * - `GET /msi/token?api-version=2019-08-01&resource=…` with `X-IDENTITY-HEADER: S`
 *   (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`: msal-node, @azure/identity, azure-identity, MSAL,
 *   azidentity), or `?api-version=2017-09-01` with `secret: S` (`MSI_SECRET`).
 * - `/S/msi/token` (`MSI_ENDPOINT`): the same, with the secret in the path as well, because
 *   the Azure CLI 2.45 (msrestazure) POSTs `resource=…` there with `Metadata: true` and no
 *   secret header, and go-azure-sdk GETs `MSI_ENDPOINT?api-version=2019-08-01&…` with
 *   `Metadata: true` and `x-ms-identity: IDENTITY_HEADER` when `MSI_ENDPOINT`/`MSI_SECRET` are set.
 * - `GET /S/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…` with
 *   `Metadata: true` (`ARM_MSI_ENDPOINT`: Terraform's go-azure-sdk builds `endpoint + "?" +
 *   query` and sends no secret header, so the secret is in the path).
 * - `GET /S/azkeep/account`: the run's account, for the `az` shim's exec mode.
 *
 * Every check names the threat it stops; every refusal is 403 (or 400 for a malformed
 * request), never 404/410/429/5xx, which the SDKs retry with backoff (a denial would look like
 * a hang). Each request is logged: caller pid and executable, audience, outcome; never a token
 * or the secret (the URL path is never logged).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { decodeJwtPayload, stringClaim } from "../core/entra/jwt.js";
import { isAzkeepError } from "../core/errors.js";
import { identifyPeer, type Peer } from "./peer.js";
import type { RunToken, TokenBackend } from "./tokens.js";

/** The account view the shim's exec mode answers `account show` from (no secrets). */
export interface RunAccountView {
  /** az's `account show` object (the profile entry, with `environmentName`) for the run's subscription. */
  account: Record<string, unknown>;
  tenant: string;
  subscription: string;
  /** `--resource-type` names → resources of the run's cloud. */
  resources: Record<string, string>;
}

export interface EndpointOptions {
  backend: TokenBackend;
  view: RunAccountView;
  /** Audiences the child may get tokens for (`--allow-scope`); empty = any. */
  allowScopes?: readonly string[];
  /** One line per request. */
  log(line: string): void;
  /** Called with the log line of each refusal (exec prints it as a warning). */
  onRefused?(line: string): void;
  /** Only descendants of this pid may call (Linux); undefined until the child is spawned. */
  rootPid(): number | undefined;
  /** Identify callers from /proc (default: on Linux). */
  checkPeer?: boolean;
  /** Secret bytes (tests); default 32 random bytes. */
  secret?: Buffer;
  now?: () => number;
}

export interface Endpoint {
  port: number;
  /** Hex; hand it only to the child. */
  secret: string;
  /** `http://127.0.0.1:P` */
  origin: string;
  /** The variables that point the child's SDKs here. */
  env: Record<string, string>;
  close(): Promise<void>;
}

type Route = "app-service" | "msi" | "imds" | "account";

class Refusal extends Error {
  constructor(
    readonly status: 400 | 403,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

const IDENTITY_PARAMS = ["client_id", "clientid", "object_id", "principal_id", "mi_res_id", "msi_res_id"];

/** `https://x/.default`, `https://x/`, `HTTPS://X` → `https://x`: audiences compared loosely. */
export function normalizeAudience(value: string): string {
  let v = value.trim().toLowerCase();
  if (v.endsWith("/.default")) v = v.slice(0, -"/.default".length);
  while (v.endsWith("/")) v = v.slice(0, -1);
  // ARM has two names for one audience; tools use either (az: …core.windows.net/, SDKs: …azure.com).
  if (v === "https://management.core.windows.net") v = "https://management.azure.com";
  return v;
}

function digest(s: string | Buffer): Buffer {
  return createHash("sha256").update(s).digest();
}

/** 2017-09-01's `expires_on`: `MM/DD/YYYY HH:MM:SS +00:00` (UTC), as App Service on Linux. */
export function format2017ExpiresOn(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +00:00`;
}

function clientIdOf(token: string, memo: Map<string, string>): string {
  const hit = memo.get(token);
  if (hit !== undefined) return hit;
  const claims = decodeJwtPayload(token);
  const id = stringClaim(claims, "appid") ?? stringClaim(claims, "azp") ?? "";
  if (memo.size > 64) memo.clear();
  memo.set(token, id);
  return id;
}

function readBody(req: IncomingMessage, limit = 16 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Refusal(400, "invalid_request", "The request body is too large."));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts the endpoint on 127.0.0.1 (a random free port). */
export async function startEndpoint(opts: EndpointOptions): Promise<Endpoint> {
  const secretBytes = opts.secret ?? randomBytes(32);
  const secret = secretBytes.toString("hex");
  const secretDigest = digest(secret);
  const checkPeer = opts.checkPeer ?? process.platform === "linux";
  const allow = new Set((opts.allowScopes ?? []).map(normalizeAudience));
  const now = opts.now ?? (() => Date.now());
  const peers = new WeakMap<Socket, Promise<Peer>>();
  const clientIds = new Map<string, string>();
  let port = 0;

  /** Constant-time: both sides hashed to 32 bytes first, so lengths never leak either. */
  const isSecret = (given: string): boolean => timingSafeEqual(digest(given), secretDigest);

  const peerOf = (socket: Socket): Promise<Peer> => {
    let p = peers.get(socket);
    if (!p) {
      const root = opts.rootPid();
      p =
        root === undefined || socket.remotePort === undefined
          ? Promise.resolve({ pid: undefined, descendant: false, exe: "?" })
          : identifyPeer(socket.remotePort, port, root).catch(() => ({
              pid: undefined,
              descendant: false,
              exe: "?",
            }));
      // A connection made before the child exists cannot be the child's: decide again later.
      if (root !== undefined) peers.set(socket, p);
    }
    return p;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = now();
    let route: Route | "?" = "?";
    let audience = "-";
    let peer: Peer | undefined;
    const finish = (status: number, outcome: string, reason?: string) => {
      const who = peer ? `pid=${peer.pid ?? "?"} exe=${peer.exe}` : "pid=? exe=?";
      const line =
        `${new Date(started).toISOString()} ${who} route=${route} audience=${audience} ` +
        `outcome=${outcome} status=${status}` +
        (reason ? ` reason=${JSON.stringify(reason)}` : "");
      opts.log(line);
      if (outcome === "refused") opts.onRefused?.(line);
    };
    const send = (status: number, body: Record<string, unknown>) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": Buffer.byteLength(text),
        "Cache-Control": "no-store",
      });
      res.end(text);
    };
    try {
      // Who is calling (decided once per connection, begun when it connected): named in the
      // log line of every request, refused ones too.
      if (checkPeer) peer = await peerOf(req.socket);
      // DNS rebinding: a web page that resolved its own name to 127.0.0.1 sends its own Host.
      if (req.headers.host !== `127.0.0.1:${port}`) {
        throw new Refusal(403, "access_denied", "The Host header is not this endpoint's address.");
      }
      const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
      const parts = url.pathname.split("/").filter(Boolean);
      // The secret: in the path (clients that send no secret header) and/or in a header.
      const presented: string[] = [];
      let rest = parts;
      if (parts.length > 0 && parts[0] !== "msi" && parts[0] !== "metadata") {
        presented.push(parts[0]!);
        rest = parts.slice(1);
      }
      for (const h of ["x-identity-header", "secret", "x-ms-identity"]) {
        const v = req.headers[h];
        if (typeof v === "string") presented.push(v);
        else if (Array.isArray(v)) presented.push(...v);
      }
      const path = rest.join("/").toLowerCase();
      if (path === "msi/token") route = parts[0] === "msi" ? "app-service" : "msi";
      else if (path === "metadata/identity/oauth2/token") route = "imds";
      else if (path === "azkeep/account") route = "account";
      // Every secret presented must be right, and one must be presented (a stolen URL without
      // the secret, or a guess, gets nothing).
      if (presented.length === 0) throw new Refusal(403, "access_denied", "No secret was presented.");
      let ok = true;
      for (const s of presented) ok = isSecret(s) && ok;
      if (!ok) throw new Refusal(403, "access_denied", "Wrong secret.");
      // Only the run's own processes: a secret that leaked (a log, /proc/<pid>/environ of the
      // child read by another process) does not let an outsider in.
      if (peer) {
        if (!peer.descendant) {
          throw new Refusal(403, "access_denied", "The caller is not a process of this azkeep exec run.");
        }
      }
      if (route === "?") throw new Refusal(400, "invalid_request", "Unknown path.");
      if (route === "account") {
        if (req.method !== "GET") throw new Refusal(400, "invalid_request", "Only GET is supported.");
        send(200, opts.view as unknown as Record<string, unknown>);
        finish(200, "ok");
        return;
      }
      let params = url.searchParams;
      if (req.method === "POST") {
        // msrestazure's Cloud Shell form: POST resource=… with Metadata: true.
        const body = await readBody(req);
        params = new URLSearchParams(body);
        for (const [k, v] of url.searchParams) if (!params.has(k)) params.set(k, v);
      } else if (req.method !== "GET") {
        throw new Refusal(400, "invalid_request", "Only GET (and the Cloud Shell form's POST) is supported.");
      }
      // SSRF: IMDS-style requests must carry Metadata: true (a server tricked into fetching a
      // URL sends no such header).
      if (
        (route === "imds" || req.method === "POST") &&
        String(req.headers.metadata).toLowerCase() !== "true"
      ) {
        throw new Refusal(400, "invalid_request", "Required metadata header not specified.");
      }
      const resource = params.get("resource") ?? params.get("scope") ?? "";
      if (!resource)
        throw new Refusal(400, "invalid_request", "Required query variable 'resource' is missing.");
      audience = normalizeAudience(resource);
      const picked = IDENTITY_PARAMS.find((p) => params.get(p));
      if (picked) {
        throw new Refusal(
          400,
          "invalid_request",
          `azkeep exec serves the run's one identity; leave out '${picked}' (and AZURE_CLIENT_ID).`,
        );
      }
      if (allow.size > 0 && !allow.has(audience)) {
        throw new Refusal(403, "access_denied", "The audience is not in this run's --allow-scope list.");
      }
      let token: RunToken;
      try {
        token = await opts.backend.token(resource.endsWith("/.default") ? resource.slice(0, -9) : resource, {
          pid: peer?.pid,
        });
      } catch (e) {
        const message = isAzkeepError(e)
          ? `${e.message}${e.hint ? ` ${e.hint}` : ""}`
          : "azkeep could not get a token.";
        // 400, not 5xx: the SDKs would retry a 5xx for half a minute, and the person must act.
        throw new Refusal(400, "invalid_request", message);
      }
      const nowS = Math.floor(now() / 1000);
      const expiresIn = Math.max(0, token.expiresOn - nowS);
      const apiVersion = params.get("api-version") ?? "";
      send(200, {
        access_token: token.accessToken,
        expires_in: String(expiresIn),
        expires_on:
          apiVersion === "2017-09-01" ? format2017ExpiresOn(token.expiresOn) : String(token.expiresOn),
        ext_expires_in: String(expiresIn),
        not_before: String(nowS),
        resource,
        token_type: token.tokenType || "Bearer",
        client_id: clientIdOf(token.accessToken, clientIds),
      });
      finish(200, "ok");
    } catch (e) {
      const r =
        e instanceof Refusal ? e : new Refusal(400, "invalid_request", "The request could not be answered.");
      // Both error shapes: OAuth's (error/error_description; MSAL, azure-identity) and App
      // Service's (statusCode/message; @azure/identity reads message first).
      if (!res.headersSent) {
        send(r.status, {
          error: r.error,
          error_description: r.message,
          statusCode: r.status,
          message: r.message,
        });
      }
      finish(r.status, "refused", r.message);
    }
  };

  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => void handle(req, res));
  if (checkPeer) {
    // Identify the caller as soon as it connects, in parallel with reading its request.
    server.on("connection", (s: Socket) => void peerOf(s));
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  return {
    port,
    secret,
    origin,
    env: {
      IDENTITY_ENDPOINT: `${origin}/msi/token`,
      IDENTITY_HEADER: secret,
      MSI_ENDPOINT: `${origin}/${secret}/msi/token`,
      MSI_SECRET: secret,
      ARM_MSI_ENDPOINT: `${origin}/${secret}/metadata/identity/oauth2/token`,
      AZKEEP_EXEC_ENDPOINT: `${origin}/${secret}`,
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
