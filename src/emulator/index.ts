/**
 * A local Microsoft Entra ID (v2.0 endpoints) + Azure Resource Manager emulator that real
 * Azure clients accept. `startEmulator()` serves it on plain HTTP (127.0.0.1, for speed) and,
 * by default, over HTTPS with a local CA plus a CONNECT proxy that routes the real Azure host
 * names into it (`transport.ts`). It never imports `core/`: it must not share bugs with the
 * client it tests.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { EmulatorControl } from "./control.js";
import { closeServer, listen } from "./http.js";
import { DEFAULT_SEED, parseSeed, type Seed } from "./seed.js";
import { createHandler, type CoreContext } from "./server.js";
import { TokenIssuer, createSigningKey, loadOrCreateSigningKey } from "./tokens.js";
import { DEFAULT_LIFETIMES, ENDPOINTS, World, type Lifetimes } from "./world.js";

export { EmulatorControl } from "./control.js";
export { SigningKeyFileError } from "./tokens.js";
export type { DeviceCodeInfo, FaultSpec, RequestFilter, RequestList } from "./control.js";
export { mintFederatedToken, type FederatedTokenOptions } from "./federated.js";
export { completeAuthorize, completeDeviceLogin, type SignInAnswers } from "./driver.js";
export {
  DEFAULT_FEDERATED_ISSUER_PRIVATE_JWK,
  DEFAULT_SP_CERT_PEM,
  DEFAULT_SP_KEY_PEM,
} from "./default-keys.js";
export * from "./seed.js";
export { DEFAULT_LIFETIMES, ENDPOINTS } from "./world.js";
export type { EndpointName, Fault, FaultType, Lifetimes, RequestRecord } from "./world.js";

export interface EmulatorOptions {
  /** The world to serve (default `DEFAULT_SEED`). Checked with `parseSeed`. */
  seed?: Seed;
  /** Port of the plain HTTP listener (default 0: any free port). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Also start the HTTPS listener and the CONNECT proxy with the local CA (default true). */
  https?: boolean;
  httpsPort?: number;
  proxyPort?: number;
  /** Where the CA lives (default `$AZKEEP_EMULATOR_DIR`, else `~/.local/share/azkeep/emulator`). */
  dataDir?: string;
  /** Token lifetimes in seconds (defaults: `DEFAULT_LIFETIMES`). */
  lifetimes?: Partial<Lifetimes>;
  /** Clock in ms (default `Date.now`); the control API can move it further. */
  clock?: () => number;
  /** The App Service managed identity secret (`IDENTITY_HEADER`; default random). */
  identityHeader?: string;
  /**
   * Where the token signing key is kept (PKCS#8 PEM, 0600; made on first use), so tokens stay
   * valid across restarts. Default: a new key in memory at every start.
   * `azkeep emulator start` keeps it in `<data-dir>/signing-key.pem`.
   */
  signingKeyFile?: string;
  /**
   * The control API's bearer token (default: random per run; `azkeep emulator start` takes it
   * from `AZKEEP_EMULATOR_CONTROL_TOKEN` when set). At least 16 characters.
   */
  controlToken?: string;
}

export interface Emulator {
  urls: {
    /** `http://127.0.0.1:PORT` */
    http: string;
    /** `https://127.0.0.1:PORT` (with https) */
    https?: string;
    /** `http://127.0.0.1:PORT`, the HTTPS_PROXY value (with https) */
    proxy?: string;
    /** The authority for clients on the plain port, e.g. `http://127.0.0.1:PORT/organizations`. */
    authority: string;
    /** The control API's base URL. */
    control: string;
  };
  /** The local CA certificate (with https). */
  caCertPath?: string;
  /** What a client needs to reach the emulator as Azure: HTTPS_PROXY, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, NO_PROXY. */
  env: Record<string, string>;
  /** Environment for managed identity clients: IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service) and the IMDS host. */
  managedIdentityEnv: Record<string, string>;
  /** A client of the control API, with the token. */
  control: EmulatorControl;
  /** The control API's bearer token, for `new EmulatorControl(urls.http, controlToken)` elsewhere. */
  controlToken: string;
  seed: Seed;
  dataDir: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AZKEEP_EMULATOR_DIR) return env.AZKEEP_EMULATOR_DIR;
  const data = env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(data, "azkeep", "emulator");
}

/** Starts the emulator. Close it with `close()` (or `await using`). */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const seed = parseSeed(options.seed ?? DEFAULT_SEED);
  const clock = options.clock ?? Date.now;
  const world = new World(seed, clock, { ...DEFAULT_LIFETIMES, ...options.lifetimes });
  const key = options.signingKeyFile
    ? await loadOrCreateSigningKey(options.signingKeyFile)
    : await createSigningKey();
  const issuer = new TokenIssuer(world, key);
  const host = options.host ?? "127.0.0.1";
  const dataDir = options.dataDir ?? defaultDataDir();
  const identityHeader = options.identityHeader ?? randomBytes(24).toString("base64url");
  const controlToken = options.controlToken ?? randomBytes(24).toString("base64url");
  if (controlToken.length < 16 || /\s/.test(controlToken))
    throw new Error("The control token must be at least 16 characters, without spaces.");
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let plainHost = `${urlHost}:0`;
  let info: Record<string, unknown> = {};

  const ctx: CoreContext = {
    world,
    issuer,
    key,
    identityHeader,
    plainUrl: () => `http://${plainHost}`,
    fallbackHost: () => plainHost,
    info: () => info,
    control: {
      token: controlToken,
      hosts: () => {
        const port = plainHost.slice(plainHost.lastIndexOf(":") + 1);
        const loopback = host === "127.0.0.1" || host === "::1" || host === "localhost";
        return [plainHost, ...(loopback ? [`localhost:${port}`] : [])];
      },
    },
  };
  const handler = createHandler(ctx);
  const server = http.createServer((req, res) => void handler(req, res));
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.on("clientError", (_err, socket) => {
    if (socket.writable)
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    socket.destroy();
  });
  await listen(server, options.port ?? 0, host);
  plainHost = `${urlHost}:${(server.address() as AddressInfo).port}`;
  const httpUrl = `http://${plainHost}`;

  let transport:
    { httpsUrl: string; proxyUrl: string; caCertPath: string; close(): Promise<void> } | undefined;
  if (options.https ?? true) {
    try {
      const { startTransport } = await import("./transport.js");
      transport = await startTransport({
        handler: (req, res) => void handler(req, res),
        dataDir,
        ...(options.httpsPort !== undefined ? { httpsPort: options.httpsPort } : {}),
        ...(options.proxyPort !== undefined ? { proxyPort: options.proxyPort } : {}),
        host,
      });
    } catch (e) {
      await closeServer(server);
      throw e;
    }
  }

  const env: Record<string, string> = {};
  if (transport) {
    env.HTTPS_PROXY = transport.proxyUrl;
    env.https_proxy = transport.proxyUrl;
    env.REQUESTS_CA_BUNDLE = transport.caCertPath;
    env.NODE_EXTRA_CA_CERTS = transport.caCertPath;
    env.NO_PROXY = "127.0.0.1,localhost";
    env.no_proxy = "127.0.0.1,localhost";
  }
  const managedIdentityEnv: Record<string, string> = {
    IDENTITY_ENDPOINT: `${httpUrl}/msi/token`,
    IDENTITY_HEADER: identityHeader,
    AZURE_POD_IDENTITY_AUTHORITY_HOST: httpUrl,
  };
  const urls: Emulator["urls"] = {
    http: httpUrl,
    authority: `${httpUrl}/organizations`,
    control: `${httpUrl}/_emulator`,
    ...(transport ? { https: transport.httpsUrl, proxy: transport.proxyUrl } : {}),
  };
  info = {
    name: "azkeep emulator",
    urls,
    env,
    caCertPath: transport?.caCertPath,
    endpoints: ENDPOINTS,
    tenants: seed.tenants.map((t) => ({ id: t.id, domain: t.domain, displayName: t.displayName })),
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await Promise.all([closeServer(server), transport?.close()]);
    })());
  return {
    urls,
    ...(transport ? { caCertPath: transport.caCertPath } : {}),
    env,
    managedIdentityEnv,
    control: new EmulatorControl(httpUrl, controlToken),
    controlToken,
    seed,
    dataDir,
    close,
    [Symbol.asyncDispose]: close,
  };
}
