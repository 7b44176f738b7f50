/**
 * `azkeep exec -- CMD ARGS…`: opens the store once, starts the run's endpoint, runs CMD with an
 * environment that points every Azure SDK at it (and the az shim in exec mode first on PATH),
 * forwards signals, and exits with the child's code. The endpoint closes when the child exits.
 *
 * What the child gets: access tokens for the audiences it asks for (limited by
 * `--allow-scope`), in the run's one subscription/tenant, for as long as it runs. What it never
 * gets: a refresh token, a client secret, the store's key, or a way to reach another
 * subscription or tenant.
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, rmSync, type WriteStream } from "node:fs";
import { constants } from "node:os";
import { delimiter, join } from "node:path";
import { BUILTIN_CLOUDS, RESOURCE_TYPES, type Cloud } from "../core/clouds.js";
import type { Context } from "../core/context.js";
import { AzkeepError, UsageError } from "../core/errors.js";
import { findSubscription } from "../core/profile/accounts.js";
import { cloudByName } from "../core/profile/cloud-settings.js";
import type { SubscriptionEntry } from "../core/profile/types.js";
import { openTokenDeps } from "../core/tokens/deps.js";
import { startEndpoint, type Endpoint, type RunAccountView } from "./endpoint.js";
import { createAgentBackend, createPolicyBackend, type TokenBackend } from "./tokens.js";

/**
 * Variables that would make the child use another credential than the run's endpoint (or
 * hold a secret it must not have). Removed, with a warning naming them.
 */
export const STRIPPED_VARIABLES = [
  // azure-identity EnvironmentCredential / WorkloadIdentityCredential (all SDKs)
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "AZURE_CLIENT_CERTIFICATE_PATH",
  "AZURE_CLIENT_CERTIFICATE_PASSWORD",
  "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
  "AZURE_USERNAME",
  "AZURE_PASSWORD",
  "AZURE_FEDERATED_TOKEN_FILE",
  // Terraform azurerm / go-azure-sdk, Pulumi azure-native
  "ARM_CLIENT_ID",
  "ARM_CLIENT_SECRET",
  "ARM_CLIENT_SECRET_FILE_PATH",
  "ARM_CLIENT_CERTIFICATE",
  "ARM_CLIENT_CERTIFICATE_PATH",
  "ARM_CLIENT_CERTIFICATE_PASSWORD",
  "ARM_OIDC_TOKEN",
  "ARM_OIDC_TOKEN_FILE_PATH",
  "ARM_OIDC_REQUEST_TOKEN",
  "ARM_OIDC_REQUEST_URL",
  "ARM_USE_OIDC",
  "ARM_USE_AKS_WORKLOAD_IDENTITY",
  "ARM_ACCESS_KEY",
  "ARM_MSI_API_VERSION",
  // GitHub Actions / Azure Pipelines OIDC (go-azure-sdk and azidentity read them)
  "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
  "ACTIONS_ID_TOKEN_REQUEST_URL",
  "SYSTEM_ACCESSTOKEN",
  "SYSTEM_OIDCREQUESTURI",
  // Other managed-identity sources the SDKs would pick before App Service
  "IDENTITY_SERVER_THUMBPRINT",
  "IMDS_ENDPOINT",
  // kubelogin's service-principal / workload-identity inputs
  "AAD_SERVICE_PRINCIPAL_CLIENT_ID",
  "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET",
  "AAD_SERVICE_PRINCIPAL_CLIENT_CERTIFICATE",
  "AAD_USER_PRINCIPAL_NAME",
  "AAD_USER_PRINCIPAL_PASSWORD",
] as const;

/** Set by exec in the child: a nested `azkeep exec` sees it and refuses unless asked. */
export const EXEC_MARKER = "AZKEEP_EXEC";

export interface ExecOptions {
  command: string;
  args: string[];
  subscription?: string;
  tenant?: string;
  allowScopes?: string[];
  /** Put the az shim (exec mode) first on the child's PATH; default true. */
  shim?: boolean;
  /** The folder holding the `az` shim. */
  shimDir?: string;
  /** Keep the request log in this file (appended); otherwise it is removed with the run. */
  logFile?: string;
  /** Allow an exec inside another exec's child. */
  nested?: boolean;
  /** Another backend (the agent); default: this process holds the store. */
  backend?: TokenBackend;
  /** Called once the child runs (tests, benchmarks). */
  onSpawn?: (pid: number, endpoint: Endpoint) => void;
}

export interface ChildEnvInput {
  base: Readonly<Record<string, string | undefined>>;
  endpointEnv: Record<string, string>;
  subscription: string;
  tenant: string;
  runId: string;
  azureConfigDir: string;
  shimDir?: string | undefined;
}

/** The child's environment, and the names of the variables taken out of it. */
export function childEnv(input: ChildEnvInput): { env: Record<string, string>; stripped: string[] } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.base)) if (v !== undefined) env[k] = v;
  const stripped: string[] = [];
  for (const name of STRIPPED_VARIABLES) {
    if (env[name] !== undefined) {
      stripped.push(name);
      delete env[name];
    }
  }
  Object.assign(env, input.endpointEnv, {
    // Terraform azurerm (go-azure-sdk) and Pulumi azure-native use managed identity only when asked.
    ARM_USE_MSI: "true",
    // @azure/identity (and azure-identity ≥ 1.23): DefaultAzureCredential = ManagedIdentityCredential
    // only, so a refusal ends the chain instead of falling through to a real az.
    AZURE_TOKEN_CREDENTIALS: "ManagedIdentityCredential",
    ARM_SUBSCRIPTION_ID: input.subscription,
    ARM_TENANT_ID: input.tenant,
    AZURE_SUBSCRIPTION_ID: input.subscription,
    AZURE_TENANT_ID: input.tenant,
    // A real az inside the run (`az login --identity`) writes its profile here, not to ~/.azure.
    AZURE_CONFIG_DIR: input.azureConfigDir,
    [EXEC_MARKER]: input.runId,
  });
  if (input.shimDir) env.PATH = [input.shimDir, env.PATH ?? "/usr/local/bin:/usr/bin:/bin"].join(delimiter);
  return { env, stripped };
}

/** Exit code of a child that ended by a signal: 128 + its number, as shells report it. */
export function signalExitCode(signal: NodeJS.Signals): number {
  const n = (constants.signals as Record<string, number | undefined>)[signal];
  return 128 + (n ?? 1);
}

const FORWARDED: NodeJS.Signals[] = ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGINT", "SIGQUIT"];

/** A built-in cloud without touching the disk; a custom one from `config.json`. */
async function cloudNamed(ctx: Context, name: string): Promise<Cloud> {
  return BUILTIN_CLOUDS.find((c) => c.name.toLowerCase() === name.toLowerCase()) ?? cloudByName(ctx, name);
}

/** Runs the child; resolves its exit code. */
export async function runExec(ctx: Context, opts: ExecOptions): Promise<number> {
  const outer = ctx.env[EXEC_MARKER];
  if (outer && !opts.nested) {
    throw new UsageError(
      "This process already runs inside `azkeep exec`: its tools get tokens from that run's endpoint.",
      { hint: "Run the command directly, or pass --nested to start a second endpoint inside this run." },
    );
  }
  const runId = Buffer.from(ctx.random.bytes(6)).toString("hex");
  let childPid: number | undefined;
  const agentRun = {
    id: runId,
    ...(opts.allowScopes?.length ? { allowScopes: opts.allowScopes } : {}),
    childPid: () => childPid ?? process.pid,
  };
  // The account: from the agent when one runs (this process then never unseals the store),
  // else from the store, opened once, here, before the child runs (a passphrase is asked now).
  let direct: Awaited<ReturnType<typeof openTokenDeps>> | undefined;
  const openDirect = async () => (direct ??= await openTokenDeps(ctx));
  const { withAgent } = await import("../agent/attach.js");
  const fromAgent = await withAgent(ctx, (agent) =>
    agent.getAccount({
      ...(opts.subscription !== undefined ? { subscription: opts.subscription } : {}),
      run: {
        id: agentRun.id,
        childPid: process.pid,
        ...(agentRun.allowScopes ? { allowScopes: agentRun.allowScopes } : {}),
      },
    }),
  );
  let entry: SubscriptionEntry;
  if (fromAgent.via === "agent") {
    entry = fromAgent.value as SubscriptionEntry;
  } else {
    const deps = await openDirect();
    const [profile, activeCloud] = await Promise.all([deps.store.readProfile(), deps.activeCloud()]);
    entry = findSubscription(profile, activeCloud, opts.subscription);
  }
  const tenant = opts.tenant ?? entry.tenantId;
  const cloud = await cloudNamed(ctx, entry.environmentName);
  const account = { subscription: entry.id, ...(opts.tenant ? { tenant: opts.tenant } : {}) };
  const policyBackend = async () => createPolicyBackend(ctx, await openDirect(), account);
  const backend =
    opts.backend ??
    (fromAgent.via === "agent"
      ? createAgentBackend(ctx, account, agentRun, policyBackend)
      : await policyBackend());
  // Fail before the child starts when no token can be had (not signed in, wrong tenant).
  await backend.token(cloud.endpoints.activeDirectoryResourceId);

  const resources: Record<string, string> = {};
  for (const [name, field] of Object.entries(RESOURCE_TYPES)) {
    const r = cloud.endpoints[field];
    if (r) resources[name] = r;
  }
  const view: RunAccountView = {
    account: opts.tenant ? { ...entry, tenantId: tenant } : { ...entry },
    tenant,
    subscription: entry.id,
    resources,
  };

  const runsDir = join(ctx.paths.runtimeDir, "exec");
  mkdirSync(runsDir, { recursive: true, mode: 0o700 });
  const runDir = join(runsDir, `run-${runId}`);
  mkdirSync(runDir, { mode: 0o700 });
  const azureConfigDir = join(runDir, "azure");
  mkdirSync(azureConfigDir, { mode: 0o700 });
  const logPath = opts.logFile ?? join(runDir, "requests.log");
  let log: WriteStream;
  try {
    log = createWriteStream(logPath, { flags: "a", mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      log.once("open", () => resolve());
      log.once("error", reject);
    });
  } catch (e) {
    rmSync(runDir, { recursive: true, force: true });
    throw new AzkeepError("bad_input", `Cannot write the request log '${logPath}': ${(e as Error).message}`, {
      hint: "Pass --log a file in a folder you can write to.",
    });
  }

  // Request lines are written in batches (every 100 ms): one file write per request would
  // cost the endpoint more than answering it.
  let pending: string[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  const flushLog = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (pending.length > 0) log.write(pending.join(""));
    pending = [];
  };
  const logLine = (line: string) => {
    pending.push(line);
    if (pending.length >= 512) flushLog();
    else flushTimer ??= setTimeout(flushLog, 100);
  };
  let endpoint: Endpoint | undefined;
  try {
    endpoint = await startEndpoint({
      backend,
      view,
      ...(opts.allowScopes?.length ? { allowScopes: opts.allowScopes } : {}),
      log: (line) => logLine(`run=${runId} ${line}\n`),
      onRefused: (line) => ctx.logger.warn(`azkeep exec refused a token request: ${line}`),
      rootPid: () => childPid,
    });
    const { env, stripped } = childEnv({
      base: ctx.env,
      endpointEnv: endpoint.env,
      subscription: entry.id,
      tenant,
      runId,
      azureConfigDir,
      shimDir: opts.shim === false ? undefined : opts.shimDir,
    });
    if (stripped.length > 0) {
      ctx.logger.warn(
        `azkeep exec removed ${stripped.join(", ")} from the child's environment: it gets its tokens from this run's endpoint.`,
      );
    }
    logLine(
      `run=${runId} ${new Date(ctx.clock.now()).toISOString()} start command=${JSON.stringify(opts.command)} subscription=${entry.id} tenant=${tenant} allow=${opts.allowScopes?.join(",") || "*"}\n`,
    );
    const code = await spawnAndWait(opts.command, opts.args, env, (pid) => {
      childPid = pid;
      opts.onSpawn?.(pid, endpoint!);
    });
    logLine(`run=${runId} ${new Date(ctx.clock.now()).toISOString()} end exit=${code}\n`);
    return code;
  } finally {
    await endpoint?.close();
    flushLog();
    await new Promise<void>((resolve) => log.end(() => resolve()));
    rmSync(runDir, { recursive: true, force: true });
  }
}

function spawnAndWait(
  command: string,
  args: string[],
  env: Record<string, string>,
  onSpawn: (pid: number) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: "inherit" });
    // A terminal's Ctrl-C / Ctrl-\ reach the child directly (same process group): forwarding
    // them too would be a second interrupt (Terraform reads two as "stop now"). Without a
    // terminal they are forwarded like the others.
    const fromTerminal = Boolean(process.stdin.isTTY || process.stderr.isTTY);
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const sig of FORWARDED) {
      const h = () => {
        if ((sig === "SIGINT" || sig === "SIGQUIT") && fromTerminal) return;
        try {
          child.kill(sig);
        } catch {
          /* gone */
        }
      };
      handlers.set(sig, h);
      process.on(sig, h);
    }
    const cleanup = () => {
      for (const [sig, h] of handlers) process.off(sig, h);
    };
    child.once("spawn", () => onSpawn(child.pid!));
    child.once("error", (e: NodeJS.ErrnoException) => {
      cleanup();
      if (e.code === "ENOENT")
        reject(
          new AzkeepError("not_found", `'${command}' was not found.`, {
            hint: "Check the command's name, or give its full path after `--`.",
            details: { exitCode: 127 },
          }),
        );
      else if (e.code === "EACCES")
        reject(
          new AzkeepError("bad_input", `'${command}' cannot be run (permission denied).`, {
            hint: "Make it executable (chmod +x) or run it through its interpreter.",
            details: { exitCode: 126 },
          }),
        );
      else reject(e);
    });
    child.once("exit", (code, signal) => {
      cleanup();
      resolve(code ?? (signal ? signalExitCode(signal) : 1));
    });
  });
}
