/** `cloud set | register | unregister` (reference §4.2). */
import { readFile } from "node:fs/promises";
import {
  ENDPOINT_FLAGS,
  SUFFIX_FLAGS,
  activeCloudName,
  findCloud,
  type Cloud,
  type CloudEndpoints,
  type CloudSuffixes,
} from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError, UsageError } from "../errors.js";
import type { Store } from "../store/types.js";
import { setDefault } from "./accounts.js";
import { isLoopbackHost } from "../net.js";
import { loadCloudSettings, updateCloudSettings } from "./cloud-settings.js";

/**
 * Makes `name` the active cloud. Remembers the current default subscription for the cloud left
 * and restores the one remembered for the cloud chosen (az keeps these in clouds.config).
 */
export async function switchCloud(ctx: Context, store: Store, name: string): Promise<Cloud> {
  const settings = await loadCloudSettings(ctx, store);
  const cloud = findCloud(settings, name);
  if (!cloud) {
    throw new AzkeepError("not_found", `The cloud '${name}' is not registered.`, {
      hint: "Run `azkeep cloud list` to see the registered clouds, or `azkeep cloud register` to add one.",
    });
  }
  const previous = activeCloudName(settings);
  const profile = await store.readProfile();
  const currentDefault = profile.subscriptions.find((e) => e.isDefault && e.environmentName === previous);
  const remembered = settings.cloudSubscriptions?.[cloud.name];
  await updateCloudSettings(
    ctx,
    (s) => {
      s.activeCloud = cloud.name;
      if (currentDefault) s.cloudSubscriptions = { ...s.cloudSubscriptions, [previous]: currentDefault.id };
    },
    store,
  );
  if (remembered) {
    await store.update((state) => {
      const entry = state.profile.subscriptions.find(
        (e) => e.environmentName === cloud.name && e.id === remembered,
      );
      if (entry) setDefault(state.profile, entry);
    });
  }
  return cloud;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function checkUrl(name: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`--endpoint-${name} '${value}' is not a URL.`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw new UsageError(`--endpoint-${name} must be an http(s) URL.`);
  return value;
}

const FLAG_OF: Record<string, string> = Object.fromEntries(
  Object.entries(ENDPOINT_FLAGS).map(([flag, field]) => [field, `--endpoint-${flag}`]),
);

/**
 * Every endpoint of a custom cloud is https, except on this machine (an emulator on
 * 127.0.0.1): the authority receives passwords, client secrets and refresh tokens, the
 * resource manager bearer tokens. Threat: a plain-http endpoint on the network, where anyone on
 * the path reads them. Values that are not URLs (some resource ids are app-id URIs) pass.
 */
function requireHttps(field: string, value: string | undefined): void {
  if (typeof value !== "string") return;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return;
  }
  if (u.protocol === "https:") return;
  if (u.protocol === "http:" && isLoopbackHost(u.hostname)) return;
  if (u.protocol !== "http:" && !["activeDirectory", "resourceManager", "management"].includes(field)) return;
  const flag = FLAG_OF[field] ?? field;
  throw new UsageError(
    `${flag} '${value}' is not https: azkeep sends credentials or tokens there, and plain http is allowed only to this machine (localhost, 127.0.0.1, ::1).`,
    {
      hint: `Give ${flag} as https://${u.host}${u.pathname === "/" ? "/" : u.pathname}, then run \`azkeep cloud register\` again.`,
    },
  );
}

/** Builds a custom cloud from `cloud register` flags (and `--cloud-config`), filling gaps from ARM metadata. */
export async function cloudFromFlags(
  ctx: Context,
  flags: Record<string, string | undefined>,
): Promise<Cloud> {
  const name = flags.name ?? "";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new UsageError(`'${name}' is not a valid cloud name (letters, digits, '.', '_', '-').`);
  }
  const endpoints: Partial<CloudEndpoints> = {};
  const suffixes: CloudSuffixes = {};
  if (flags.cloudConfig) {
    const path = flags.cloudConfig.replace(/^@/, "");
    let config: { endpoints?: Record<string, string>; suffixes?: Record<string, string>; profile?: string };
    try {
      config = JSON.parse(await readFile(path, "utf8")) as typeof config;
    } catch (e) {
      throw new AzkeepError("bad_input", `Cannot read --cloud-config ${path} as JSON.`, { cause: e });
    }
    for (const [k, v] of Object.entries(config.endpoints ?? {}))
      if (typeof v === "string") (endpoints as Record<string, string>)[k] = v;
    for (const [k, v] of Object.entries(config.suffixes ?? {}))
      if (typeof v === "string") (suffixes as Record<string, string>)[k] = v;
    if (config.profile && !flags.profile) flags.profile = config.profile;
  }
  for (const [flag, field] of Object.entries(ENDPOINT_FLAGS)) {
    const v = flags[camel(`endpoint-${flag}`)];
    if (v !== undefined) endpoints[field] = checkUrl(flag, v);
  }
  for (const [flag, field] of Object.entries(SUFFIX_FLAGS)) {
    const v = flags[camel(`suffix-${flag}`)];
    if (v !== undefined) suffixes[field] = v;
  }
  if (!endpoints.resourceManager) {
    throw new UsageError("A cloud needs --endpoint-resource-manager.", {
      hint: "Run `azkeep cloud register -n NAME --endpoint-resource-manager https://management.example/ …`.",
    });
  }
  // Before the metadata request, which goes there.
  for (const [field, value] of Object.entries(endpoints)) requireHttps(field, value);
  if (!endpoints.activeDirectory || !endpoints.activeDirectoryResourceId) {
    const meta = await armMetadata(ctx, endpoints.resourceManager);
    if (!endpoints.activeDirectory && meta?.loginEndpoint) endpoints.activeDirectory = meta.loginEndpoint;
    if (!endpoints.activeDirectoryResourceId && meta?.audience)
      endpoints.activeDirectoryResourceId = meta.audience;
    if (!endpoints.activeDirectoryGraphResourceId && meta?.graphEndpoint)
      endpoints.activeDirectoryGraphResourceId = meta.graphEndpoint;
    if (!endpoints.activeDirectory || !endpoints.activeDirectoryResourceId) {
      throw new UsageError(
        "The cloud needs --endpoint-active-directory and --endpoint-active-directory-resource-id (the resource manager's metadata/endpoints did not give them).",
      );
    }
  }
  endpoints.activeDirectory = endpoints.activeDirectory.replace(/\/+$/, "");
  for (const [field, value] of Object.entries(endpoints)) requireHttps(field, value);
  endpoints.management ??= endpoints.activeDirectoryResourceId;
  return {
    name,
    endpoints: endpoints as CloudEndpoints,
    suffixes,
    profile: flags.profile ?? "latest",
    builtin: false,
  };
}

async function armMetadata(
  ctx: Context,
  resourceManager: string,
): Promise<{ loginEndpoint?: string; audience?: string; graphEndpoint?: string } | undefined> {
  const url = `${resourceManager.replace(/\/+$/, "")}/metadata/endpoints?api-version=2015-01-01`;
  try {
    const res = await ctx.fetch(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as {
      authentication?: { loginEndpoint?: string; audiences?: string[] };
      graphEndpoint?: string;
    };
    const out: { loginEndpoint?: string; audience?: string; graphEndpoint?: string } = {};
    if (body.authentication?.loginEndpoint) out.loginEndpoint = body.authentication.loginEndpoint;
    if (body.authentication?.audiences?.[0]) out.audience = body.authentication.audiences[0];
    if (body.graphEndpoint) out.graphEndpoint = body.graphEndpoint;
    return out;
  } catch {
    ctx.logger.debug(`GET ${url} failed`);
    return undefined;
  }
}

export async function registerCloud(ctx: Context, cloud: Cloud): Promise<void> {
  await updateCloudSettings(ctx, (s) => {
    if (findCloud(s, cloud.name)) {
      throw new AzkeepError("usage", `The cloud '${cloud.name}' is already registered.`, {
        hint: `Run \`azkeep cloud unregister -n ${cloud.name}\` first to replace it.`,
      });
    }
    s.customClouds = [...(s.customClouds ?? []), cloud];
  });
}

export async function unregisterCloud(ctx: Context, name: string): Promise<void> {
  await updateCloudSettings(ctx, (s) => {
    const cloud = findCloud(s, name);
    if (!cloud)
      throw new AzkeepError("not_found", `The cloud '${name}' is not registered.`, {
        hint: "Run `azkeep cloud list`.",
      });
    if (cloud.builtin)
      throw new AzkeepError("usage", `The cloud '${cloud.name}' is built in and cannot be unregistered.`);
    if (activeCloudName(s) === cloud.name) {
      throw new AzkeepError(
        "usage",
        `The cloud '${cloud.name}' is the active cloud and cannot be unregistered.`,
        {
          hint: "Run `azkeep cloud set -n AzureCloud` first.",
        },
      );
    }
    s.customClouds = (s.customClouds ?? []).filter((c) => c.name !== cloud.name);
  });
}
