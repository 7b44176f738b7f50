/**
 * Network settings: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (lower-case too) and
 * `NODE_EXTRA_CA_CERTS`. Node's built-in fetch ignores proxy variables, so when one is set
 * azkeep sends requests through undici's `EnvHttpProxyAgent`. undici is imported only then, to
 * keep start-up fast for everyone else.
 *
 * `NODE_EXTRA_CA_CERTS` is trusted by Node itself when it is set at process start; it is also
 * applied explicitly when the Context's environment names a different file (library users and
 * in-process tests), and to the proxy agent's connections.
 */
import { readFileSync } from "node:fs";
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
  /** The fetch to use when no proxy or extra CA is needed (Node's global fetch). */
  base: typeof fetch;
  /** True when Node already trusts `env.NODE_EXTRA_CA_CERTS` (it was set at process start). */
  extraCaTrustedByNode: boolean;
}

/**
 * A fetch that honours the proxy variables and `NODE_EXTRA_CA_CERTS` of `env`. Without either
 * it is `base` itself; otherwise undici is loaded on the first request.
 */
export function createNetworkFetch(opts: NetworkFetchOptions): typeof fetch {
  const { env, base } = opts;
  const proxy = usesProxy(env);
  const extraCa = env.NODE_EXTRA_CA_CERTS && !opts.extraCaTrustedByNode ? env.NODE_EXTRA_CA_CERTS : undefined;
  const caFile = env.NODE_EXTRA_CA_CERTS;
  if (!proxy && !extraCa) return base;
  let dispatcherFetch: Promise<typeof fetch> | undefined;
  const load = async (): Promise<typeof fetch> => {
    // undici is CommonJS: bundled by esbuild, its dynamic import has only a default export.
    const undici = (await import("undici")).default;
    // node:tls costs ~5 ms and 3 MiB at start-up: loaded only here (get-access-token's hot path never needs it).
    const ca = caFile ? readCa(caFile, (await import("node:tls")).rootCertificates) : undefined;
    const tls = ca ? { ca } : {};
    const dispatcher = proxy
      ? new undici.EnvHttpProxyAgent({ ...proxySettings(env), connect: tls, requestTls: tls, proxyTls: tls })
      : new undici.Agent({ connect: tls });
    const f = undici.fetch;
    return (input: Parameters<typeof fetch>[0], init?: RequestInit) =>
      f(input as never, { ...(init as object), dispatcher });
  };
  return async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    dispatcherFetch ??= load();
    return (await dispatcherFetch)(input, init);
  };
}
