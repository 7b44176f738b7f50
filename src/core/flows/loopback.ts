/**
 * The loopback listener of the browser flow (RFC 8252 §7.3): HTTP on loopback addresses only
 * (never 0.0.0.0: other machines must not reach it), on an ephemeral port or `--port` for SSH
 * tunnels. It accepts the first request carrying this sign-in's `state` with `code` or
 * `error`, on any path, as MSAL does; every other request gets a short page and is ignored.
 *
 * Threat stopped: another local user taking the answer. Entra accepts only
 * `http://localhost:PORT` for public clients such as the Azure CLI's (it rejects 127.0.0.1),
 * and browsers resolve `localhost` themselves, to `::1` as well as `127.0.0.1` (Chromium does
 * whatever /etc/hosts says). A listener on 127.0.0.1 alone let another user bind `[::1]:PORT`
 * and receive `code` and `state` from Chromium. So with a `localhost` redirect the listener
 * binds the same port on every address `localhost` can mean (127.0.0.1, ::1, and what the
 * resolver returns), and fails before the browser opens if one of them is taken. An address
 * this machine does not have (no IPv6) cannot be bound by anyone, and is skipped. Linux lets
 * two sockets share a port only with SO_REUSEPORT on both and the same uid, which Node's
 * listeners never set.
 *
 * A request with a wrong or missing `state` (another sign-in's answer, a forged redirect) is
 * answered and ignored: it must not end this sign-in.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { lookup } from "node:dns/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIP, type AddressInfo } from "node:net";
import { AzkeepError } from "../errors.js";

export interface LoopbackListener {
  port: number;
  /** The redirect URI to send (`http://localhost:<port>` for Entra, which rejects 127.0.0.1). */
  redirectUri: string;
  /** The addresses listened on (`127.0.0.1`, `::1`, …). */
  addresses: readonly string[];
  /** Resolves with the callback's query parameters (first request with this `state`). */
  callback: Promise<URLSearchParams>;
  /** Called for each answer ignored for its `state` (a forged or stale redirect). */
  onIgnored?: () => void;
  /** Lets the caller answer the browser after checking the callback. */
  respond(page: { ok: boolean; title: string; message: string }): void;
  close(): Promise<void>;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page shown in the browser after the sign-in: plain, no scripts, no external resources. */
export function landingPage(page: { ok: boolean; title: string; message: string }): string {
  const color = page.ok ? "#107c10" : "#a4262c";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(page.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}h1{color:${color};font-size:1.4em}</style>
</head><body><h1 id="azkeep-result" data-ok="${page.ok}">${escapeHtml(page.title)}</h1><p>${escapeHtml(page.message)}</p></body></html>`;
}

/** Constant-time comparison of a received `state` with the expected one. */
export function sameState(received: string | null, expected: string): boolean {
  if (received === null) return false;
  const h = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(h(received), h(expected));
}

function isLoopback(address: string): boolean {
  return address === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/** Every address `localhost` can mean to a browser on this machine; refuses a non-loopback one. */
async function localhostAddresses(): Promise<string[]> {
  const out = new Set(["127.0.0.1", "::1"]);
  let resolved: { address: string }[] = [];
  try {
    resolved = await lookup("localhost", { all: true });
  } catch {
    // No resolver answer: browsers still resolve localhost to loopback themselves.
  }
  for (const { address } of resolved) {
    if (!isLoopback(address)) {
      throw new AzkeepError(
        "config",
        `'localhost' resolves to ${address} on this machine, which is not a loopback address: the browser's sign-in answer could go to another host.`,
        {
          hint: "Map localhost to 127.0.0.1 and ::1 in /etc/hosts, or use `azkeep login --use-device-code`.",
        },
      );
    }
    out.add(address);
  }
  return [...out];
}

const shown = (address: string) => (address.includes(":") ? `[${address}]` : address);

/** Binds `server` on `address:port`; resolves the port, or `undefined` when the address does not exist here. */
function bind(server: Server, address: string, port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      // No such address on this machine (IPv6 off): nobody can listen there, no one to fear.
      if (address !== "127.0.0.1" && (e.code === "EADDRNOTAVAIL" || e.code === "EAFNOSUPPORT"))
        resolve(undefined);
      else reject(e);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ port, host: address, ipv6Only: isIP(address) === 6, exclusive: true });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function portError(e: NodeJS.ErrnoException, port: number, address: string): Error {
  if (e.code === "EADDRINUSE") {
    const other =
      address === "127.0.0.1"
        ? ""
        : ` Another program, possibly another user's, listens there; the browser may deliver the sign-in answer to it, so azkeep does not open the sign-in page.`;
    return new AzkeepError("config", `Port ${port} on ${shown(address)} is in use.${other}`, {
      hint: "Choose another port with --port, or leave --port out to use any free port.",
    });
  }
  if (e.code === "EACCES")
    return new AzkeepError("config", `Not allowed to listen on port ${port}.`, {
      hint: "Choose a port above 1023 with --port.",
    });
  return e;
}

/** How often an ephemeral port is tried again when another address of localhost has it taken. */
const PORT_ATTEMPTS = 8;

export async function startLoopback(opts: {
  /** This sign-in's `state`: only an answer carrying it is taken. */
  state: string;
  port?: number;
  redirectHost?: "localhost" | "127.0.0.1";
  /** Path of the redirect URI: none for Entra (as MSAL sends it), `/` for generic providers. */
  redirectPath?: string;
}): Promise<LoopbackListener> {
  const redirectHost = opts.redirectHost ?? "localhost";
  let resolveCb!: (p: URLSearchParams) => void;
  const callback = new Promise<URLSearchParams>((r) => (resolveCb = r));
  let pending: ServerResponse | undefined;
  let answered = false;
  const ref: { listener?: LoopbackListener } = {};
  const page = (res: ServerResponse, status: number, p: { title: string; message: string }) => {
    res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(landingPage({ ok: false, ...p }));
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const params = new URL(req.url ?? "/", "http://localhost").searchParams;
    if (answered) {
      page(res, 410, {
        title: "This sign-in has already finished",
        message: "azkeep has already received an answer. You can close this window.",
      });
      return;
    }
    if (req.method !== "GET" || (!params.has("code") && !params.has("error"))) {
      page(res, 404, {
        title: "Waiting for the sign-in",
        message: "This address receives the answer of the sign-in page. Go back to the sign-in page.",
      });
      return;
    }
    if (!sameState(params.get("state"), opts.state)) {
      page(res, 400, {
        title: "Not the sign-in azkeep is waiting for",
        message:
          "This answer belongs to another sign-in (its state does not match); it was ignored and nothing was saved. Finish the sign-in in the window azkeep opened.",
      });
      ref.listener?.onIgnored?.();
      return;
    }
    answered = true;
    pending = res;
    resolveCb(params);
  };

  const addresses = redirectHost === "localhost" ? await localhostAddresses() : ["127.0.0.1"];
  let servers: Server[] = [];
  let port = 0;
  let bound: string[] = [];
  for (let attempt = 1; ; attempt++) {
    servers = addresses.map(() => {
      const s = createServer(handler);
      s.keepAliveTimeout = 1000;
      return s;
    });
    port = opts.port ?? 0;
    bound = [];
    let failure: { e: NodeJS.ErrnoException; address: string } | undefined;
    for (const [i, address] of addresses.entries()) {
      try {
        const got = await bind(servers[i]!, address, port);
        if (got === undefined) continue;
        port = got;
        bound.push(address);
      } catch (e) {
        failure = { e: e as NodeJS.ErrnoException, address };
        break;
      }
    }
    if (!failure) break;
    await Promise.all(servers.map(closeServer));
    // An ephemeral port another address of localhost has taken: try another port, a few times.
    const taken = failure.e.code === "EADDRINUSE" && opts.port === undefined;
    if (taken && attempt < PORT_ATTEMPTS) continue;
    if (taken)
      throw new AzkeepError(
        "config",
        `azkeep found no port free on every address of localhost (${addresses.map(shown).join(", ")}) in ${attempt} tries.`,
        {
          hint: "Another program holds them: stop it, choose a port with --port, or use `azkeep login --use-device-code`.",
          cause: failure.e,
        },
      );
    throw portError(failure.e, port, failure.address);
  }
  const listener: LoopbackListener = {
    port,
    redirectUri: `http://${redirectHost}:${port}${opts.redirectPath ?? ""}`,
    addresses: bound,
    callback,
    respond(p) {
      const res = pending;
      pending = undefined;
      if (!res) return;
      res.writeHead(p.ok ? 200 : 400, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        connection: "close",
      });
      res.end(landingPage(p));
    },
    async close() {
      if (pending)
        listener.respond({ ok: false, title: "Sign-in ended", message: "azkeep stopped waiting." });
      await Promise.all(servers.map(closeServer));
    },
  };
  ref.listener = listener;
  return listener;
}
