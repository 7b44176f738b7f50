/** `azkeep login`: flags → one LoginRequest → `core/signin.login` (or generic OIDC). */
import { readFile, stat } from "node:fs/promises";
import type { CommandRun } from "../../command.js";
import { AzkeepError, UsageError } from "../../../core/errors.js";
import type { Context } from "../../../core/context.js";
import type { Cloud } from "../../../core/clouds.js";
import type { LoginMethod, LoginRequest } from "../../../core/signin.js";
import type { ServicePrincipalCredential, Store } from "../../../core/store/types.js";

export interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  tenant?: string;
  allowNoSubscriptions?: boolean;
  servicePrincipal?: boolean;
  certificate?: string;
  useCertSnIssuer?: boolean;
  federatedToken?: string;
  federatedTokenFile?: string;
  identity?: boolean;
  clientId?: string;
  objectId?: string;
  resourceId?: string;
  useDeviceCode?: boolean;
  scope?: string[];
  claimsChallenge?: string;
  port?: string;
  browser?: boolean;
  timeout?: string;
  authority?: string;
  identityPort?: string;
}

type Flag = keyof LoginFlags;
const NAMES: Partial<Record<Flag, string>> = {
  username: "--username",
  password: "--password",
  passwordStdin: "--password-stdin",
  tenant: "--tenant",
  servicePrincipal: "--service-principal",
  certificate: "--certificate",
  useCertSnIssuer: "--use-cert-sn-issuer",
  federatedToken: "--federated-token",
  federatedTokenFile: "--federated-token-file",
  identity: "--identity",
  clientId: "--client-id",
  objectId: "--object-id",
  resourceId: "--resource-id",
  useDeviceCode: "--use-device-code",
  port: "--port",
  authority: "--authority",
  allowNoSubscriptions: "--allow-no-subscriptions",
  claimsChallenge: "--claims-challenge",
};

function given(f: LoginFlags, k: Flag): boolean {
  if (k === "browser") return f.browser === false;
  const v = f[k];
  return v !== undefined && v !== false;
}

function conflict(f: LoginFlags, a: Flag, others: Flag[]): void {
  if (!given(f, a)) return;
  const clash = others.filter((o) => given(f, o));
  if (clash.length) {
    throw new UsageError(
      `${NAMES[a] ?? a} cannot be combined with ${clash.map((c) => NAMES[c] ?? (c === "browser" ? "--no-browser" : c)).join(", ")}.`,
      {
        hint: "Run `azkeep login --help` to see which flags go together.",
      },
    );
  }
}

/** Flag combinations az rejects (reference §2.1), plus azkeep's own flags. */
export function validateFlags(f: LoginFlags): void {
  conflict(f, "identity", [
    "password",
    "passwordStdin",
    "servicePrincipal",
    "tenant",
    "useDeviceCode",
    "certificate",
    "federatedToken",
    "federatedTokenFile",
    "username",
    "authority",
    "port",
    "browser",
  ]);
  conflict(f, "useDeviceCode", [
    "username",
    "password",
    "passwordStdin",
    "servicePrincipal",
    "port",
    "browser",
  ]);
  conflict(f, "authority", [
    "servicePrincipal",
    "username",
    "password",
    "passwordStdin",
    "tenant",
    "allowNoSubscriptions",
  ]);
  conflict(f, "password", ["passwordStdin", "certificate", "federatedToken", "federatedTokenFile"]);
  conflict(f, "passwordStdin", ["certificate", "federatedToken", "federatedTokenFile"]);
  conflict(f, "certificate", ["federatedToken", "federatedTokenFile"]);
  conflict(f, "federatedToken", ["federatedTokenFile"]);
  for (const k of ["certificate", "federatedToken", "federatedTokenFile", "useCertSnIssuer"] as const) {
    if (given(f, k) && !f.servicePrincipal)
      throw new UsageError(`${NAMES[k]} needs --service-principal.`, {
        hint: "Run `azkeep login --service-principal -u APP_ID --tenant TENANT …`.",
      });
  }
  if (f.useCertSnIssuer && !f.certificate) throw new UsageError("--use-cert-sn-issuer needs --certificate.");
  if (f.servicePrincipal && !f.username) {
    throw new UsageError("--service-principal needs -u/--username with the app (client) id.", {
      hint: "Run `azkeep login --service-principal -u APP_ID --tenant TENANT --password-stdin`.",
    });
  }
  if (f.servicePrincipal && (given(f, "port") || given(f, "browser")))
    throw new UsageError("--port and --no-browser are for the browser sign-in, not --service-principal.");
  const mi = (["clientId", "objectId", "resourceId"] as const).filter((k) => given(f, k));
  if (mi.length > 1) throw new UsageError(`Give only one of ${mi.map((k) => NAMES[k]).join(", ")}.`);
  if ((f.objectId || f.resourceId) && !f.identity)
    throw new UsageError(`${f.objectId ? "--object-id" : "--resource-id"} needs --identity.`);
  if (f.clientId && !f.identity && !f.authority)
    throw new UsageError("--client-id needs --identity (managed identity) or --authority (OpenID provider).");
  if (f.authority && !f.clientId)
    throw new UsageError("--authority needs --client-id: the client id registered at that provider.");
  if ((given(f, "port") || given(f, "browser")) && (f.username || f.useDeviceCode))
    throw new UsageError("--port and --no-browser are for the browser sign-in.");
}

function parsePort(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new UsageError(`--port '${s}' is not a port number (1-65535).`);
  }
  return n;
}

function parseTimeout(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout '${s}' is not a number of seconds.`);
  return Math.round(n * 1000);
}

async function readStdinSecret(ctx: Context): Promise<string> {
  const text = (await ctx.prompter.readStdin()).replace(/\r?\n$/, "");
  if (!text)
    throw new UsageError("--password-stdin was given but standard input is empty.", {
      hint: 'Pipe the secret in: printf %s "$SECRET" | azkeep login … --password-stdin',
    });
  return text;
}

async function readCertificate(path: string): Promise<string> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: "EISDIR" });
    return await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AzkeepError(
      "bad_input",
      `Cannot read the certificate file ${path}${code ? ` (${code})` : ""}.`,
      {
        cause: e,
        hint: "Give --certificate the path of a PEM file with the private key and the certificate.",
      },
    );
  }
}

async function servicePrincipalCredential(ctx: Context, f: LoginFlags): Promise<ServicePrincipalCredential> {
  if (f.certificate) {
    const pem = await readCertificate(f.certificate);
    const { loadCertificate } = await import("../../../core/flows/certificate.js");
    loadCertificate(pem, `The certificate file ${f.certificate}`); // fail before any request
    return { kind: "certificate", certificatePem: pem, ...(f.useCertSnIssuer ? { sendX5c: true } : {}) };
  }
  if (f.federatedTokenFile) return { kind: "federated-file", path: f.federatedTokenFile };
  if (f.federatedToken) {
    ctx.logger.warn("--federated-token puts the token in the process list; prefer --federated-token-file.");
    return { kind: "federated-token", token: f.federatedToken };
  }
  if (f.password !== undefined) {
    ctx.logger.warn(
      "A secret given with -p/--password can be read by other users in the process list; use --password-stdin or AZKEEP_CLIENT_SECRET.",
    );
    return { kind: "secret", secret: f.password };
  }
  if (f.passwordStdin) return { kind: "secret", secret: await readStdinSecret(ctx) };
  if (ctx.env.AZKEEP_CLIENT_SECRET) return { kind: "secret", secret: ctx.env.AZKEEP_CLIENT_SECRET };
  if (ctx.env.AZURE_FEDERATED_TOKEN_FILE)
    return { kind: "federated-file", path: ctx.env.AZURE_FEDERATED_TOKEN_FILE };
  if (ctx.prompter.interactive) {
    const secret = await ctx.prompter.ask("Client secret: ", { secret: true });
    if (secret) return { kind: "secret", secret };
  }
  throw new UsageError("A service principal needs a credential.", {
    hint: "Pass the secret with --password-stdin or AZKEEP_CLIENT_SECRET, or use --certificate <PEM file> or --federated-token-file <file>.",
  });
}

async function method(ctx: Context, f: LoginFlags): Promise<LoginMethod> {
  if (f.identity) {
    return {
      kind: "identity",
      ...(f.clientId ? { clientId: f.clientId } : {}),
      ...(f.objectId ? { objectId: f.objectId } : {}),
      ...(f.resourceId ? { resourceId: f.resourceId } : {}),
    };
  }
  if (f.servicePrincipal) {
    return {
      kind: "service-principal",
      clientId: f.username as string,
      credential: await servicePrincipalCredential(ctx, f),
    };
  }
  if (f.username) {
    let password = f.password;
    if (password === undefined && f.passwordStdin) password = await readStdinSecret(ctx);
    if (password === undefined) {
      if (!ctx.prompter.interactive) {
        throw new UsageError("Please specify both username and password in non-interactive mode.", {
          hint: "Pipe the password with --password-stdin, or sign in with the browser (`azkeep login`).",
        });
      }
      password = await ctx.prompter.ask("Password: ", { secret: true });
    } else if (f.password !== undefined) {
      ctx.logger.warn(
        "A password given with -p/--password can be read by other users in the process list; use --password-stdin.",
      );
    }
    return { kind: "password", username: f.username, password };
  }
  if (f.password !== undefined || f.passwordStdin) throw new UsageError("A password needs -u/--username.");
  if (f.useDeviceCode) return { kind: "device-code" };
  const port = parsePort(f.port);
  const timeoutMs = parseTimeout(f.timeout);
  return {
    kind: "browser",
    ...(port === undefined ? {} : { port }),
    ...(f.browser === false ? { noBrowser: true } : {}),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
}

export const run: CommandRun<LoginFlags> = async (flags, io) => {
  validateFlags(flags);
  if (flags.identityPort) io.ctx.logger.warn("--identity-port is deprecated and ignored.");
  const ctx = io.ctx;
  if (flags.authority) return { value: await oidcRun(ctx, flags, io.signal) };
  const [{ applySignIn, collectSignIn, login, validateLoginRequest }, { withAgent }] = await Promise.all([
    import("../../../core/signin.js"),
    import("../../../agent/attach.js"),
  ]);
  const { openStore } = await import("../../../core/store/index.js");
  // Through the agent when it runs (agent-only mode: only then): it names the cloud it verified
  // against the seal (and fails now, before anyone is asked anything, when it is locked), this
  // process signs in, and the agent seals the result. One connection per step: a sign-in in a
  // browser may take longer than the agent keeps an idle connection.
  const fromAgent = await withAgent(ctx, async (agent) => (await agent.activeCloud()) as Cloud);
  let store: Store | undefined;
  let cloud: Cloud;
  if (fromAgent.via === "agent") cloud = fromAgent.value;
  else {
    store = await openStore(ctx);
    // The store must be writable before anyone is asked anything: a key provider that is not
    // usable here used to fail only after the person had approved the sign-in.
    await store.prepareWrite?.();
    const { loadCloudSettings, resolveActiveCloud } = await import("../../../core/profile/cloud-settings.js");
    // config.json's cloud section is checked against the seal (the store opened above).
    cloud = resolveActiveCloud(ctx, await loadCloudSettings(ctx, store));
  }
  const req: LoginRequest = {
    cloud,
    method: await method(ctx, flags),
    ...(flags.tenant ? { tenant: flags.tenant } : {}),
    ...(flags.scope?.length ? { scopes: flags.scope } : {}),
    ...(flags.allowNoSubscriptions ? { allowNoSubscriptions: true } : {}),
    ...(flags.claimsChallenge ? { claims: flags.claimsChallenge } : {}),
    signal: io.signal,
  };
  validateLoginRequest(req);
  if (store) return { value: (await login(ctx, store, req)).subscriptions };
  const record = await collectSignIn(ctx, req);
  const saved = await withAgent(ctx, async (agent) => {
    const r = (await agent.write({ kind: "signin", record })) as { subscriptions: unknown[] };
    return r.subscriptions;
  });
  if (saved.via === "agent") return { value: saved.value };
  // The agent went away meanwhile and agent-only mode is off: this process saves the sign-in.
  const { withCloudName } = await import("../../../core/profile/accounts.js");
  const added = await (await openStore(ctx)).update((state) => applySignIn(state, record));
  return { value: added.map(withCloudName) };
};

/** `login --authority`: generic OIDC, saved by this process (not through the agent). */
async function oidcRun(ctx: Context, flags: LoginFlags, signal: AbortSignal | undefined): Promise<unknown> {
  const [{ openStore }, { readConfig }] = await Promise.all([
    import("../../../core/store/index.js"),
    import("../../../core/config.js"),
  ]);
  if ((await readConfig(ctx).catch(() => undefined))?.store?.mode === "agent-only") {
    throw new AzkeepError(
      "store_unavailable",
      "Signing in to a generic OpenID Connect provider (--authority) does not go through the agent yet, and the store is in agent-only mode.",
      {
        hint: "Run `azkeep agent start --no-agent-only`, sign in, then `azkeep agent start --agent-only` again.",
      },
    );
  }
  const store = await openStore(ctx);
  await store.prepareWrite?.();
  const { oidcLogin } = await import("../../../core/flows/oidc.js");
  const port = parsePort(flags.port);
  const timeoutMs = parseTimeout(flags.timeout);
  return oidcLogin(ctx, store, {
    issuer: flags.authority as string,
    clientId: flags.clientId as string,
    ...(flags.scope?.length ? { scopes: flags.scope } : {}),
    ...(flags.useDeviceCode ? { deviceCode: true } : {}),
    ...(port === undefined ? {} : { port }),
    ...(flags.browser === false ? { noBrowser: true } : {}),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(signal ? { signal } : {}),
  });
}
