/**
 * How clients reach the emulator over TLS: an HTTPS listener on loopback, and a CONNECT proxy
 * that stands in for the real Azure hosts. A client configured with `HTTPS_PROXY=<proxyUrl>`
 * and the local CA trusted (`REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`) talks to
 * `https://login.microsoftonline.com/…` as usual; the proxy terminates TLS with a certificate
 * for that name and hands the decrypted request, Host header intact, to the emulator's handler.
 *
 * The proxy never dials out: every host it does not cover is refused with 403, so a test or a
 * demo can never reach (or leak a token to) the real Azure by accident.
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { AZURE_HOSTS, LOOPBACK_HOSTS, issueServerCertificate, loadOrCreateCa, matchesHost } from "./ca.js";
import { closeServer, listen } from "./http.js";

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface TransportOptions {
  /** Serves every request, whether it came to the HTTPS listener, through a tunnel or as plain HTTP. */
  handler: Handler;
  /** Where the CA lives (made 0700; created on first start, reused later). */
  dataDir: string;
  /** Port of the HTTPS listener; 0 (the default) picks a free one. */
  httpsPort?: number;
  /** Port of the CONNECT proxy; 0 (the default) picks a free one. */
  proxyPort?: number;
  /** Interface both listen on; default 127.0.0.1. */
  host?: string;
}

export interface Transport {
  /** e.g. `https://127.0.0.1:40123` */
  httpsUrl: string;
  /** e.g. `http://127.0.0.1:40124`, the value for HTTPS_PROXY */
  proxyUrl: string;
  /** The CA certificate (PEM) clients must trust. */
  caCertPath: string;
  /** The same certificate's PEM text, for clients configured in-process. */
  caCertPem: string;
  /** Host names routed into the emulator through the proxy (`*.x` = one label). */
  coveredHosts: readonly string[];
  /** Stops both listeners and drops open connections, tunnels included. */
  close(): Promise<void>;
}

/**
 * Hosts reached over plain HTTP through the proxy (absolute-URI requests): the Azure hosts,
 * and the instance metadata service address used by managed identity.
 */
const IMDS_HOSTS: readonly string[] = ["169.254.169.254"];

/** Starts the HTTPS listener and the CONNECT proxy; both serve `options.handler`. */
export async function startTransport(options: TransportOptions): Promise<Transport> {
  const host = options.host ?? "127.0.0.1";
  const ca = await loadOrCreateCa(options.dataDir);
  const leaf = await issueServerCertificate(ca, [...LOOPBACK_HOSTS, ...AZURE_HOSTS]);
  const serve = guard(options.handler);

  const sockets = new Set<Duplex>();
  const track = (s: Duplex): void => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };

  const tlsServer = https.createServer(
    { key: leaf.keyPem, cert: leaf.chainPem, ALPNProtocols: ["http/1.1"] },
    serve,
  );
  tlsServer.on("connection", track);
  // A failed handshake (a client that does not trust the CA) only ends that connection.
  tlsServer.on("tlsClientError", (_err, socket) => socket.destroy());

  const proxy = http.createServer((req, res) => {
    const target = absoluteTarget(req.url ?? "");
    if (!target) {
      respond(
        res,
        400,
        "This is the azkeep emulator's proxy. Set HTTPS_PROXY to this address and trust the emulator's CA; " +
          "it routes HTTPS to Azure host names into the emulator.\n",
      );
      return;
    }
    if (!matchesHost(target.hostname, [...AZURE_HOSTS, ...IMDS_HOSTS])) {
      respond(res, 403, refusal(target.host));
      return;
    }
    // Plain HTTP through the proxy (e.g. IMDS at 169.254.169.254): the handler sees an
    // origin-form URL and the client's Host header, as if it had been asked directly.
    req.url = target.path;
    req.headers.host ??= target.host;
    serve(req, res);
  });
  // Bounded waits, so an idle or trickling client cannot hold a connection forever.
  for (const server of [tlsServer, proxy]) {
    server.headersTimeout = 30_000;
    server.requestTimeout = 60_000;
    server.keepAliveTimeout = 5_000;
  }
  proxy.on("connection", track);
  proxy.on("clientError", (_err, socket) => {
    if (socket.writable)
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    socket.destroy();
  });

  await listen(tlsServer, options.httpsPort ?? 0, host);
  const httpsPort = (tlsServer.address() as AddressInfo).port;

  proxy.on("connect", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node leaves a CONNECT socket without an error listener: a client that resets it would
    // otherwise crash the process.
    socket.on("error", () => socket.destroy());
    const authority = parseAuthority(req.url ?? "");
    const allowed =
      authority !== undefined &&
      ((authority.port === 443 && matchesHost(authority.hostname, AZURE_HOSTS)) ||
        // the emulator's own HTTPS listener, for clients that send loopback through the proxy too
        (authority.port === httpsPort && matchesHost(authority.hostname, LOOPBACK_HOSTS)));
    if (!allowed) {
      const body = refusal(req.url ?? "");
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) socket.unshift(head);
    // The TLS server terminates the tunnel with the leaf certificate; requests keep the Host
    // header the client sent (login.microsoftonline.com, …).
    tlsServer.emit("connection", socket);
  });

  await listen(proxy, options.proxyPort ?? 0, host).catch(async (err: unknown) => {
    await closeServer(tlsServer);
    throw err;
  });
  const proxyPort = (proxy.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    httpsUrl: `https://${urlHost}:${httpsPort}`,
    proxyUrl: `http://${urlHost}:${proxyPort}`,
    caCertPath: ca.certPath,
    caCertPem: ca.certPem,
    coveredHosts: AZURE_HOSTS,
    close() {
      closing ??= (async () => {
        const done = Promise.all([closeServer(proxy), closeServer(tlsServer)]);
        for (const s of sockets) s.destroy();
        await done;
      })();
      return closing;
    },
  };
}

/** Runs the handler; a throw or a rejected promise becomes an Entra-style 500, never a crash. */
function guard(handler: Handler): Handler {
  return (req, res) => {
    const fail = (err: unknown): void => {
      if (res.headersSent) {
        res.destroy(err instanceof Error ? err : undefined);
        return;
      }
      const body = JSON.stringify({
        error: "server_error",
        error_description: "AADSTS90000: The emulator failed to handle the request.",
        error_codes: [90000],
      });
      res.writeHead(500, {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": Buffer.byteLength(body),
      });
      res.end(body);
    };
    try {
      const result = handler(req, res) as unknown;
      if (result instanceof Promise) result.catch(fail);
    } catch (err) {
      fail(err);
    }
  };
}

function refusal(target: string): string {
  return (
    // The target is echoed for the person debugging, but never raw (no header or markup injection).
    `The azkeep emulator's proxy refuses ${target.slice(0, 260).replace(/[^\w.:[\]-]/g, "?")}: it only routes ` +
    `Azure sign-in and Resource Manager hosts into the emulator and never connects anywhere else.\n`
  );
}

function respond(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    Connection: "close",
  });
  res.end(body);
}

/** `host:port` of a CONNECT request line (authority-form, RFC 9110 §9.3.6). */
function parseAuthority(value: string): { hostname: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { hostname: (m[1] ?? m[2] ?? "").toLowerCase(), port };
}

/** An absolute-form request target (`http://host/path`), as clients send to a proxy. */
function absoluteTarget(value: string): { hostname: string; host: string; path: string } | undefined {
  if (!/^http:\/\//i.test(value)) return undefined;
  try {
    const u = new URL(value);
    return { hostname: u.hostname.replace(/^\[|\]$/g, ""), host: u.host, path: `${u.pathname}${u.search}` };
  } catch {
    return undefined;
  }
}
