/**
 * Running the real Azure CLI (Debian's azure-cli 2.45) in tests: a throwaway config folder and
 * an environment that reaches only the emulator (the stock AzureCloud through its proxy).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const AZ_INSTALL = "apt-get install -y azure-cli";

/** Variables every child gets: enough to run, nothing from the developer's own Azure setup. */
export function baseEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    LANG: "C.UTF-8",
    TZ: "UTC",
  };
}

/**
 * A throwaway Azure CLI config folder, `root/name`. `versionCheck.json` is pre-seeded with a
 * fresh timestamp so az skips its update check (which would otherwise try azure.microsoft.com
 * and GitHub before every command).
 */
export function azConfigDir(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // az compares with datetime.now() in local time; the az env pins TZ=UTC.
  const now = new Date().toISOString().replace("T", " ").replace("Z", "000");
  writeFileSync(
    join(dir, "versionCheck.json"),
    JSON.stringify({
      versions: {
        "azure-cli": { local: "2.45.0" },
        core: { local: "2.45.0" },
        telemetry: { local: "1.0.8" },
      },
      update_time: now,
    }),
  );
  return dir;
}

/** The Azure CLI's environment: the stock AzureCloud, reached through the emulator's proxy. */
export function azEnv(
  home: string,
  configDir: string,
  proxyUrl: string,
  caCertPath: string,
): Record<string, string> {
  return {
    ...baseEnv(home),
    AZURE_CONFIG_DIR: configDir,
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    // The only CA requests trusts: nothing but the emulator can answer.
    REQUESTS_CA_BUNDLE: caCertPath,
    AZURE_CORE_COLLECT_TELEMETRY: "false",
    AZURE_CORE_NO_COLOR: "true",
    AZURE_CORE_SURVEY_MESSAGE: "false",
  };
}
