/**
 * The loopback listener of the browser flow (RFC 8252 §7.3): an HTTP server on 127.0.0.1 only
 * (never 0.0.0.0: other machines must not reach it), on an ephemeral port or `--port` for SSH
 * tunnels. It accepts the first request carrying `code` or `error`, on any path, as MSAL does;
 * other requests get a short page and are ignored.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AzkeepError } from "../errors.js";

export interface LoopbackListener {
  port: number;
  /** The redirect URI to send (`http://localhost:<port>` for Entra, which rejects 127.0.0.1). */
  redirectUri: string;
  /** Resolves with the callback's query parameters (first request with `code` or `error`). */
  callback: Promise<URLSearchParams>;
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

export async function startLoopback(opts: {
  port?: number;
  redirectHost?: "localhost" | "127.0.0.1";
  /** Path of the redirect URI: none for Entra (as MSAL sends it), `/` for generic providers. */
  redirectPath?: string;
}): Promise<LoopbackListener> {
  let resolveCb!: (p: URLSearchParams) => void;
  const callback = new Promise<URLSearchParams>((r) => (resolveCb = r));
  let pending: ServerResponse | undefined;
  let answered = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const params = url.searchParams;
    if (req.method !== "GET" || answered || (!params.has("code") && !params.has("error"))) {
      res.writeHead(answered ? 410 : 404, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
      });
      res.end(
        landingPage({
          ok: false,
          title: answered ? "This sign-in has already finished" : "Waiting for the sign-in",
          message: answered
            ? "azkeep has already received an answer. You can close this window."
            : "This address receives the answer of the sign-in page. Go back to the sign-in page.",
        }),
      );
      return;
    }
    answered = true;
    pending = res;
    resolveCb(params);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") {
        reject(
          new AzkeepError("config", `Port ${opts.port} on 127.0.0.1 is in use.`, {
            hint: "Choose another port with --port, or leave --port out to use any free port.",
          }),
        );
      } else if (e.code === "EACCES") {
        reject(
          new AzkeepError("config", `Not allowed to listen on port ${opts.port}.`, {
            hint: "Choose a port above 1023 with --port.",
          }),
        );
      } else reject(e);
    });
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const listener: LoopbackListener = {
    port,
    redirectUri: `http://${opts.redirectHost ?? "localhost"}:${port}${opts.redirectPath ?? ""}`,
    callback,
    respond(page) {
      const res = pending;
      pending = undefined;
      if (!res) return;
      res.writeHead(page.ok ? 200 : 400, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        connection: "close",
      });
      res.end(landingPage(page));
    },
    close() {
      return new Promise<void>((resolve) => {
        if (pending)
          listener.respond({ ok: false, title: "Sign-in ended", message: "azkeep stopped waiting." });
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return listener;
}
