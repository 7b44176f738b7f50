/**
 * Clouds: the endpoints of each Azure environment (reference §4.1). Names match what callers
 * map (`AzureCloud`, `AzureChinaCloud`, `AzureUSGovernment`). Custom clouds (Azure Stack, the
 * emulator) are registered in azkeep's config and have the same shape.
 */

export interface CloudEndpoints {
  /** Authority host, e.g. `https://login.microsoftonline.com` (no tenant, no trailing slash). */
  activeDirectory: string;
  resourceManager: string;
  /** ARM's token audience (`management`), e.g. `https://management.core.windows.net/`. */
  activeDirectoryResourceId: string;
  activeDirectoryGraphResourceId?: string;
  microsoftGraphResourceId?: string;
  batchResourceId?: string;
  ossrdbmsResourceId?: string;
  mediaResourceId?: string;
  activeDirectoryDataLakeResourceId?: string;
  management?: string;
}

export interface CloudSuffixes {
  storageEndpoint?: string;
  keyvaultDns?: string;
}

export interface Cloud {
  name: string;
  endpoints: CloudEndpoints;
  suffixes: CloudSuffixes;
  /** ARM api-version profile (`latest`, `2020-09-01-hybrid`, …). */
  profile: string;
  builtin: boolean;
}

export const BUILTIN_CLOUDS: readonly Cloud[] = [
  {
    name: "AzureCloud",
    endpoints: {
      activeDirectory: "https://login.microsoftonline.com",
      resourceManager: "https://management.azure.com/",
      activeDirectoryResourceId: "https://management.core.windows.net/",
      activeDirectoryGraphResourceId: "https://graph.windows.net/",
      microsoftGraphResourceId: "https://graph.microsoft.com/",
      batchResourceId: "https://batch.core.windows.net/",
      ossrdbmsResourceId: "https://ossrdbms-aad.database.windows.net",
      mediaResourceId: "https://rest.media.azure.net",
      activeDirectoryDataLakeResourceId: "https://datalake.azure.net/",
      management: "https://management.core.windows.net/",
    },
    suffixes: { storageEndpoint: "core.windows.net", keyvaultDns: ".vault.azure.net" },
    profile: "latest",
    builtin: true,
  },
  {
    name: "AzureChinaCloud",
    endpoints: {
      activeDirectory: "https://login.chinacloudapi.cn",
      resourceManager: "https://management.chinacloudapi.cn",
      activeDirectoryResourceId: "https://management.core.chinacloudapi.cn/",
      activeDirectoryGraphResourceId: "https://graph.chinacloudapi.cn/",
      microsoftGraphResourceId: "https://microsoftgraph.chinacloudapi.cn",
      batchResourceId: "https://batch.chinacloudapi.cn/",
      ossrdbmsResourceId: "https://ossrdbms-aad.database.chinacloudapi.cn",
      mediaResourceId: "https://rest.media.chinacloudapi.cn",
      management: "https://management.core.chinacloudapi.cn/",
    },
    suffixes: { storageEndpoint: "core.chinacloudapi.cn", keyvaultDns: ".vault.azure.cn" },
    profile: "latest",
    builtin: true,
  },
  {
    name: "AzureUSGovernment",
    endpoints: {
      activeDirectory: "https://login.microsoftonline.us",
      resourceManager: "https://management.usgovcloudapi.net/",
      activeDirectoryResourceId: "https://management.core.usgovcloudapi.net/",
      activeDirectoryGraphResourceId: "https://graph.windows.net/",
      microsoftGraphResourceId: "https://graph.microsoft.us/",
      batchResourceId: "https://batch.core.usgovcloudapi.net/",
      ossrdbmsResourceId: "https://ossrdbms-aad.database.usgovcloudapi.net",
      mediaResourceId: "https://rest.media.usgovcloudapi.net",
      management: "https://management.core.usgovcloudapi.net/",
    },
    suffixes: { storageEndpoint: "core.usgovcloudapi.net", keyvaultDns: ".vault.usgovcloudapi.net" },
    profile: "latest",
    builtin: true,
  },
];

export const DEFAULT_CLOUD = "AzureCloud";

/** The Azure CLI's public client id, which Entra accepts for every tenant. */
export const AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/** `--resource-type` values of `get-access-token`, mapped to endpoint fields (reference §2.4). */
export const RESOURCE_TYPES = {
  "oss-rdbms": "ossrdbmsResourceId",
  arm: "activeDirectoryResourceId",
  "aad-graph": "activeDirectoryGraphResourceId",
  "ms-graph": "microsoftGraphResourceId",
  batch: "batchResourceId",
  media: "mediaResourceId",
  "data-lake": "activeDirectoryDataLakeResourceId",
} as const satisfies Record<string, keyof CloudEndpoints>;

export type ResourceType = keyof typeof RESOURCE_TYPES;

/**
 * A v1 resource becomes a v2 scope by appending `/.default`, keeping any trailing slash, as az
 * does: `https://management.core.windows.net/` → `https://management.core.windows.net//.default`.
 */
export function resourceToScope(resource: string): string {
  return `${resource}/.default`;
}

/** azkeep's cloud settings in its config file (non-secret). */
export interface CloudSettings {
  /** The active cloud's name; default `AzureCloud`. */
  activeCloud?: string;
  /** Registered custom clouds (Azure Stack, ADFS, the emulator). */
  customClouds?: Cloud[];
  /** The subscription last chosen in each cloud, restored by `cloud set` (az's clouds.config). */
  cloudSubscriptions?: Record<string, string>;
}

/** Every known cloud: built-ins first, then custom ones. */
export function allClouds(settings: CloudSettings): Cloud[] {
  return [...BUILTIN_CLOUDS, ...(settings.customClouds ?? [])];
}

/** Finds a cloud by name, case-insensitively. */
export function findCloud(settings: CloudSettings, name: string): Cloud | undefined {
  const key = name.toLowerCase();
  return allClouds(settings).find((c) => c.name.toLowerCase() === key);
}

/** The active cloud (`AZURE_CLOUD_NAME`-style overrides are the caller's business). */
export function activeCloudName(settings: CloudSettings): string {
  return settings.activeCloud ?? DEFAULT_CLOUD;
}

/** az's endpoint and suffix names for `cloud register` flags and `cloud show` output. */
export const ENDPOINT_FLAGS: Record<string, keyof CloudEndpoints> = {
  "active-directory": "activeDirectory",
  "resource-manager": "resourceManager",
  "active-directory-resource-id": "activeDirectoryResourceId",
  "active-directory-graph-resource-id": "activeDirectoryGraphResourceId",
  "microsoft-graph-resource-id": "microsoftGraphResourceId",
  "active-directory-data-lake-resource-id": "activeDirectoryDataLakeResourceId",
  management: "management",
  "batch-resource-id": "batchResourceId",
  "ossrdbms-resource-id": "ossrdbmsResourceId",
  "media-resource-id": "mediaResourceId",
};

export const SUFFIX_FLAGS: Record<string, keyof CloudSuffixes> = {
  "storage-endpoint": "storageEndpoint",
  "keyvault-dns": "keyvaultDns",
};

/** A cloud as az prints it (`az cloud show`): `isActive`, `name`, `endpoints`, `suffixes`, `profile`. */
export function cloudView(cloud: Cloud, active: boolean): Record<string, unknown> {
  return {
    isActive: active,
    name: cloud.name,
    profile: cloud.profile,
    endpoints: { ...cloud.endpoints },
    suffixes: { ...cloud.suffixes },
  };
}
