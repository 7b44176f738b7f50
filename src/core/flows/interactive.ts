/**
 * The person-in-a-browser half of the authorization code flow, shared by Entra and generic
 * OIDC: open the browser (or print the address), show progress, wait for the loopback redirect
 * or a pasted redirect address, time out, stop on Ctrl-C, and check `state`.
 */
import type { Context } from "../context.js";
import { AzkeepError, IdentityProviderError } from "../errors.js";
import { sameState, type LoopbackListener } from "./loopback.js";

/** Thrown when no browser could be started; the caller falls back to the device code flow. */
export class BrowserUnavailableError extends AzkeepError {
  constructor() {
    super("config", "No web browser is available.", {
      hint: "Use `azkeep login --use-device-code`, or --no-browser to open the address on another machine.",
    });
    this.name = "BrowserUnavailableError";
  }
}

export const DEFAULT_INTERACTIVE_TIMEOUT_MS = 5 * 60_000;
const PROGRESS_EVERY_MS = 30_000;

export interface InteractiveOptions {
  authorizeUrl: string;
  listener: LoopbackListener;
  state: string;
  /** Print the address instead of opening a browser; accept a pasted redirect address too. */
  noBrowser?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Extracts the callback parameters from a pasted redirect address (or its query string). */
export function parsePastedRedirect(text: string): URLSearchParams | undefined {
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.includes("code=") || l.includes("error="));
  if (!line) return undefined;
  let params: URLSearchParams;
  try {
    params = new URL(line).searchParams;
  } catch {
    params = new URLSearchParams(line.replace(/^[^?]*\?/, ""));
  }
  return params.has("code") || params.has("error") ? params : undefined;
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : Object.assign(new Error("Interrupted"), { name: "AbortError" });
}

/**
 * Waits for the authorization response. Resolves with the callback parameters once `state`
 * matches and no `error` came back; the caller answers the browser with `listener.respond`.
 */
export async function awaitAuthorizationResponse(
  ctx: Context,
  opts: InteractiveOptions,
): Promise<URLSearchParams> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_INTERACTIVE_TIMEOUT_MS;
  const sources: Promise<URLSearchParams>[] = [opts.listener.callback];
  // A forged or stale redirect is answered and ignored by the listener; say so, keep waiting.
  opts.listener.onIgnored = () =>
    ctx.logger.warn(
      "Ignored a sign-in answer that does not belong to this sign-in (state mismatch): an old browser tab or another program sent it. Still waiting for the sign-in in the browser.",
    );
  if (opts.noBrowser) {
    ctx.progress.message(
      `To sign in, open this address in a web browser (on this or any other machine):\n\n${opts.authorizeUrl}\n\n` +
        `After you sign in, the browser is sent to ${opts.listener.redirectUri}/?code=… . If that page does not ` +
        `load (the browser runs on another machine), copy the whole address from the browser's address bar and paste it here.`,
    );
    sources.push(readPasted(ctx, opts.state));
  } else {
    const opened = await ctx.browser.open(opts.authorizeUrl);
    if (!opened) throw new BrowserUnavailableError();
    const endpoint = opts.authorizeUrl.split("?")[0] ?? opts.authorizeUrl;
    ctx.logger.warn(
      `A web browser has been opened at ${endpoint}. Please continue the login in the web browser. ` +
        "If no web browser is available or if the web browser fails to open, use device code flow with `azkeep login --use-device-code`.",
    );
  }
  const started = ctx.clock.now();
  const controller = new AbortController();
  const signals = [controller.signal, ...(opts.signal ? [opts.signal] : [])];
  const stop = AbortSignal.any(signals);
  const waiting = (async (): Promise<URLSearchParams> => {
    for (;;) {
      const left = timeoutMs - (ctx.clock.now() - started);
      if (left <= 0) {
        throw new AzkeepError(
          "cancelled",
          `No sign-in answer came from the browser within ${Math.round(timeoutMs / 1000)} seconds.`,
          {
            hint: "Run the command again. If the browser was closed or cannot reach this machine, use --no-browser or --use-device-code.",
          },
        );
      }
      await ctx.clock.sleep(Math.min(left, PROGRESS_EVERY_MS), stop);
      const remaining = Math.round((timeoutMs - (ctx.clock.now() - started)) / 1000);
      if (remaining > 0)
        ctx.progress.status(
          `Still waiting for the sign-in in the browser (${remaining} s left; Ctrl-C to cancel)…`,
        );
    }
  })();
  const aborted = new Promise<never>((_, reject) => {
    if (opts.signal?.aborted) reject(abortError(opts.signal));
    opts.signal?.addEventListener("abort", () => reject(abortError(opts.signal as AbortSignal)), {
      once: true,
    });
  });
  let params: URLSearchParams;
  try {
    params = await Promise.race([...sources, waiting, aborted]);
  } finally {
    controller.abort();
    waiting.catch(() => {});
    aborted.catch(() => {});
  }
  return checkAuthorizationResponse(params, opts.state, opts.listener);
}

async function readPasted(ctx: Context, state: string): Promise<URLSearchParams> {
  for (;;) {
    const text = ctx.prompter.interactive
      ? await ctx.prompter.ask("Paste the redirect address here (or wait for the browser): ")
      : await ctx.prompter.readStdin();
    const params = parsePastedRedirect(text);
    // Another sign-in's address does not end this one, as on the loopback listener.
    if (params && sameState(params.get("state"), state)) return params;
    if (!ctx.prompter.interactive) {
      if (params) ctx.logger.warn("Ignored a pasted address of another sign-in (state mismatch).");
      return new Promise<never>(() => {}); // stdin ended: wait for the loopback
    }
    ctx.progress.message(
      params
        ? "That address belongs to another sign-in (its state does not match); paste the address this sign-in ended on."
        : "That is not the redirect address (it has no code= or error=); try again.",
    );
  }
}

/** Checks `state` (CSRF: an answer from another sign-in must not be accepted) and `error`. */
export function checkAuthorizationResponse(
  params: URLSearchParams,
  state: string,
  listener?: LoopbackListener,
): URLSearchParams {
  if (params.get("state") !== state) {
    listener?.respond({
      ok: false,
      title: "Sign-in rejected",
      message:
        "The answer does not belong to the sign-in azkeep started (state mismatch). Nothing was saved.",
    });
    throw new AzkeepError(
      "auth_failed",
      "The sign-in answer does not belong to this sign-in (state mismatch); nothing was saved.",
      {
        hint: "Run the login command again and finish it in the browser window it opens. An old or forged redirect may have been used.",
      },
    );
  }
  const error = params.get("error");
  if (error) {
    const description = (params.get("error_description") ?? "").split("\n")[0] ?? "";
    listener?.respond({
      ok: false,
      title: "Sign-in failed",
      message: `${error}: ${description} You can close this window.`,
    });
    if (
      error === "access_denied" ||
      error === "consent_required" ||
      /AADSTS65004|AADSTS50058/.test(description)
    ) {
      throw new AzkeepError(
        "cancelled",
        `The sign-in was cancelled or consent was denied in the browser${description ? `: ${description}` : "."}`,
        {
          hint: "Run the login command again and accept the requested permissions.",
        },
      );
    }
    throw new IdentityProviderError(error, description || error, {
      hint: "Run the login command again; if it keeps failing, try `azkeep login --use-device-code`.",
    });
  }
  if (!params.get("code")) {
    throw new AzkeepError("auth_failed", "The sign-in answer has no authorization code.", {
      hint: "Run the login command again.",
    });
  }
  return params;
}
