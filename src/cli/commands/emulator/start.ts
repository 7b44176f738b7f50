/**
 * `azkeep emulator start`: runs the local Entra ID + ARM emulator until Ctrl-C / SIGTERM and
 * prints how to use it — URLs, the control API, the environment a client needs, the seeded
 * identities — or, with an explicit `-o`, a machine-readable description.
 */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CommandRun } from "../../command.js";
import { AzkeepError, UsageError } from "../../../core/errors.js";
import {
  DEFAULT_SEED,
  DEFAULT_SP_CERT_PEM,
  DEFAULT_SP_KEY_PEM,
  SeedError,
  SigningKeyFileError,
  defaultDataDir,
  parseSeed,
  startEmulator,
  type Emulator,
  type Seed,
} from "../../../emulator/index.js";

export interface StartOptions {
  seed?: string;
  port: string;
  httpsPort?: string;
  proxyPort?: string;
  https: boolean;
  dataDir?: string;
  /** `-o` was given: print the description as data, not prose. */
  describe: boolean;
}

function port(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    throw new UsageError(`${flag} must be a port number from 0 to 65535, not '${value.slice(0, 20)}'.`);
  return Number(value);
}

async function loadSeed(file: string): Promise<Seed> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new AzkeepError("bad_input", `Cannot read the seed file '${file}': ${(e as Error).message}`, {
      hint: "Give the path of a JSON seed (see docs/emulator.md), or leave out --seed for the built-in one.",
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AzkeepError("bad_input", `The seed file '${file}' is not valid JSON: ${(e as Error).message}`, {
      hint: "Fix the file (see the seed format in docs/emulator.md).",
    });
  }
  try {
    return parseSeed(json);
  } catch (e) {
    if (e instanceof SeedError)
      throw new AzkeepError("bad_input", `The seed file '${file}' is not usable: ${e.message}`, {
        hint: "Fix that field (see the seed format in docs/emulator.md).",
      });
    throw e;
  }
}

interface Identity {
  kind: "user" | "servicePrincipal" | "managedIdentity";
  [k: string]: unknown;
}

/** The seeded identities a person can try, with the emulator's (fake) credentials. */
function identities(seed: Seed, certPath: string | undefined): Identity[] {
  const tenantName = (id: string) => seed.tenants.find((t) => t.id === id)?.displayName ?? id;
  const out: Identity[] = [];
  for (const u of seed.users) {
    const guest = (u.guestIn ?? []).map((g) => (typeof g === "string" ? g : g.tenant));
    out.push({
      kind: "user",
      username: u.upn,
      password: u.password,
      homeTenant: u.homeTenant,
      guestIn: guest,
      mfaCode: u.mfaCode ?? "123456",
      description: `home ${tenantName(u.homeTenant)}${guest.length ? `; guest in ${guest.map(tenantName).join(", ")}` : ""}`,
    });
  }
  for (const a of seed.apps) {
    if (a.publicClient || !a.tenant) continue;
    const cert = (a.certificates ?? []).some((c) => c.pem === DEFAULT_SP_CERT_PEM) ? certPath : undefined;
    out.push({
      kind: "servicePrincipal",
      clientId: a.clientId,
      displayName: a.displayName,
      tenant: a.tenant,
      ...(a.secrets?.[0] ? { secret: a.secrets[0].value } : {}),
      ...(cert ? { certificate: cert } : {}),
      federatedSubjects: (a.federatedCredentials ?? []).map((f) => `${f.issuer} ${f.subject}`),
    });
  }
  for (const m of seed.managedIdentities ?? [])
    out.push({ kind: "managedIdentity", type: m.type, clientId: m.clientId, tenant: m.tenant });
  return out;
}

/** Writes the default service principal's certificate + key where `az login -p` can read it (0600). */
async function writeSpCertificate(dataDir: string): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, "azkeep-ci-sp.pem");
  await writeFile(path, `${DEFAULT_SP_KEY_PEM.trim()}\n${DEFAULT_SP_CERT_PEM.trim()}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

function describe(emu: Emulator, certPath: string | undefined) {
  return {
    urls: emu.urls,
    controlToken: emu.controlToken,
    ...(emu.caCertPath ? { caCertPath: emu.caCertPath } : {}),
    env: emu.env,
    managedIdentityEnv: emu.managedIdentityEnv,
    deviceLoginUrl: `${emu.urls.http}/devicelogin`,
    tenants: emu.seed.tenants.map((t) => ({
      id: t.id,
      domain: t.domain,
      displayName: t.displayName,
      requireMfa: t.requireMfa ?? false,
    })),
    identities: identities(emu.seed, certPath),
    subscriptions: emu.seed.subscriptions.map((s) => ({
      id: s.id,
      name: s.displayName,
      state: s.state ?? "Enabled",
      tenant: s.tenant,
    })),
  };
}

function prose(d: ReturnType<typeof describe>): string {
  const lines: string[] = [];
  const u = d.urls;
  lines.push("azkeep emulator is running (Ctrl-C stops it).", "");
  lines.push(`  Entra ID + ARM (plain HTTP)  ${u.http}   authority ${u.authority}`);
  if (u.https) lines.push(`  HTTPS                        ${u.https}`);
  if (u.proxy)
    lines.push(
      `  CONNECT proxy                ${u.proxy}   (login.microsoftonline.com, management.azure.com, … → here)`,
    );
  if (d.caCertPath) lines.push(`  CA certificate               ${d.caCertPath}`);
  lines.push(`  Control API                  ${u.control}   (docs/emulator.md)`);
  lines.push(
    `  Control token                ${d.controlToken}   (Authorization: Bearer …; new EmulatorControl(url, token))`,
  );
  lines.push(`  Device code page             ${d.deviceLoginUrl}`, "");
  if (u.proxy) {
    lines.push("Reach it as the real Azure from the Azure CLI, the Azure SDKs or MSAL:");
    for (const k of ["HTTPS_PROXY", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "NO_PROXY"])
      if (d.env[k]) lines.push(`  export ${k}=${d.env[k]}`);
    lines.push("");
  }
  lines.push("Seeded identities (emulator-only credentials):");
  for (const i of d.identities) {
    if (i.kind === "user")
      lines.push(
        `  user  ${String(i.username)}  password ${String(i.password)}  MFA code ${String(i.mfaCode)}  (${String(i.description)})`,
      );
    else if (i.kind === "servicePrincipal") {
      lines.push(`  service principal  ${String(i.clientId)}  tenant ${String(i.tenant)}`);
      if (i.secret) lines.push(`      secret ${i.secret as string}`);
      if (i.certificate) lines.push(`      certificate ${i.certificate as string}`);
      for (const f of i.federatedSubjects as string[])
        lines.push(
          `      federated credential: ${f} (mint a token: POST ${u.control}/federated-token, with the control token)`,
        );
    } else
      lines.push(`  managed identity (${String(i.type)})  ${String(i.clientId)}  tenant ${String(i.tenant)}`);
  }
  lines.push("", "Tenants:");
  for (const t of d.tenants)
    lines.push(
      `  ${t.id}  ${t.domain}  ${t.displayName}${t.requireMfa && !/MFA/.test(t.displayName) ? "  (requires MFA)" : ""}`,
    );
  const user = d.identities.find((i) => i.kind === "user");
  if (u.proxy && user) {
    lines.push("", "Try azkeep against it (with the exports above, in a throwaway config folder):");
    lines.push('  export AZKEEP_CONFIG_DIR="$(mktemp -d)/azkeep"');
    lines.push(
      `  printf %s '${String(user.password)}' | azkeep login -u ${String(user.username)} --password-stdin`,
    );
    lines.push("  azkeep account list -o table");
    lines.push(
      '  export PATH="$(azkeep shim path):$PATH"; az account get-access-token   # tools that run az',
    );
  }
  return lines.join("\n") + "\n";
}

export const run: CommandRun<StartOptions> = async (options, io) => {
  const httpPort = port(options.port, "--port") ?? 0;
  const httpsPort = port(options.httpsPort, "--https-port");
  const proxyPort = port(options.proxyPort, "--proxy-port");
  const seed = options.seed ? await loadSeed(options.seed) : DEFAULT_SEED;
  const dataDir = options.dataDir ?? defaultDataDir(io.ctx.env);
  const controlToken = io.ctx.env.AZKEEP_EMULATOR_CONTROL_TOKEN;
  if (controlToken !== undefined && (controlToken.length < 16 || /\s/.test(controlToken)))
    throw new AzkeepError(
      "config",
      "AZKEEP_EMULATOR_CONTROL_TOKEN must be at least 16 characters, without spaces.",
      {
        hint: "Set it to a longer random value (e.g. `openssl rand -hex 16`), or unset it for a random token per run.",
      },
    );
  let emu: Emulator;
  try {
    emu = await startEmulator({
      seed,
      port: httpPort,
      https: options.https,
      dataDir,
      // Cached tokens stay valid across restarts (clients keep them for an hour).
      signingKeyFile: join(dataDir, "signing-key.pem"),
      ...(httpsPort !== undefined ? { httpsPort } : {}),
      ...(proxyPort !== undefined ? { proxyPort } : {}),
      ...(controlToken ? { controlToken } : {}),
    });
  } catch (e) {
    if (e instanceof SigningKeyFileError)
      throw new AzkeepError("config", e.message, {
        hint: `Delete ${e.file} to make a new key (tokens the emulator issued before are then refused).`,
      });
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EADDRINUSE")
      throw new AzkeepError("config", `A port the emulator needs is in use (${err.message}).`, {
        hint: "Choose other ports with --port/--https-port/--proxy-port, or 0 for any free port.",
        cause: e,
      });
    if (err.code === "EACCES" || err.code === "EPERM")
      throw new AzkeepError("config", `The emulator cannot use its ports or data folder: ${err.message}`, {
        hint: "Use ports above 1024 and a writable --data-dir.",
        cause: e,
      });
    throw e;
  }
  const usesDefaultCert = seed.apps.some((a) =>
    (a.certificates ?? []).some((c) => c.pem === DEFAULT_SP_CERT_PEM),
  );
  const certPath = usesDefaultCert ? await writeSpCertificate(dataDir).catch(() => undefined) : undefined;

  const wait = new Promise<void>((resolve) => {
    const stop = () => void emu.close().then(resolve, resolve);
    if (io.signal.aborted) stop();
    else io.signal.addEventListener("abort", stop, { once: true });
  });
  const d = describe(emu, certPath);
  if (options.describe) return { value: d, wait };
  io.stdout(prose(d));
  return { wait };
};
