/**
 * The ENVIRONMENT and FILES sections of `azkeep --help`: every variable azkeep reads
 * (test/cli/help.test.ts scans `src/` for environment reads and fails on one missing here).
 */

/** [variables, what they do]; several names on one entry share the explanation. */
export const ENVIRONMENT: readonly (readonly [string, string])[] = [
  ["AZKEEP_CONFIG_DIR", "azkeep's config folder (default: $XDG_CONFIG_HOME/azkeep, else ~/.config/azkeep)"],
  ["AZKEEP_RUNTIME_DIR", "locks and sockets (default: $XDG_RUNTIME_DIR/azkeep, else <config folder>/run)"],
  ["AZKEEP_STORE_PROVIDER", "key provider: keyring, keyutils, passphrase, insecure-file, memory"],
  [
    "AZKEEP_PASSPHRASE, AZKEEP_PASSPHRASE_FILE",
    "the passphrase provider's passphrase (or a file holding it)",
  ],
  [
    "AZKEEP_NEW_PASSPHRASE, AZKEEP_NEW_PASSPHRASE_FILE",
    "the new passphrase for `store migrate --to passphrase`",
  ],
  ["AZKEEP_CLIENT_SECRET", "a service principal's secret for `login --service-principal`"],
  ["AZKEEP_CORE_OUTPUT", "the default output format (-o wins)"],
  ["AZKEEP_AGENT", "`off`: never use the agent, open the store in this process"],
  ["AZKEEP_AGENT_SOCK", "the agent's socket (default: in the runtime folder)"],
  ["AZKEEP_AGENT_VAULT", "set by the agent for its own vault process"],
  ["AZKEEP_PINENTRY", "which of the system's pinentry programs the agent asks with (e.g. pinentry-tty)"],
  [
    "AZKEEP_RELEASE_LOG_MAX_BYTES",
    "the size at which the agent rotates release.log (default 8 MiB; for tests)",
  ],
  [
    "AZKEEP_EXEC, AZKEEP_EXEC_ENDPOINT",
    "set by `azkeep exec` for the command it runs (the shim answers from it)",
  ],
  ["AZKEEP_SHIM_AZ_VERSION", "the Azure CLI version the az shim reports"],
  ["AZKEEP_SHIM_PASSED_TO", "set by the az shim when it hands a command to the real az (no loops)"],
  [
    "AZKEEP_EMULATOR_DIR",
    "the emulator's data folder (its CA); AZKEEP_EMULATOR_CONTROL_TOKEN: its control token",
  ],
  ["AZURE_CORE_OUTPUT", "the az shim's default output format, as az"],
  ["AZURE_FEDERATED_TOKEN_FILE", "a federated token for `login --service-principal --federated-token-file`"],
  [
    "IDENTITY_ENDPOINT, IDENTITY_HEADER, MSI_ENDPOINT, MSI_SECRET, AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "managed identity (`login --identity`): App Service, Cloud Shell, IMDS",
  ],
  ["AZURE_IDENTITY_DISABLE_CP1", "do not ask for the CP1 (continuous access evaluation) capability"],
  ["HTTPS_PROXY, HTTP_PROXY, NO_PROXY", "the proxy for Entra ID and ARM (lower-case names too)"],
  ["NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE", "extra CA certificates to trust (the emulator prints them)"],
  [
    "NODE_OPTIONS, NODE_PENDING_DEPRECATION",
    "with --pending-deprecation, the agent lane talks to the agent through node:net (no warning)",
  ],
  ["BROWSER, DISPLAY, WAYLAND_DISPLAY, WSL_DISTRO_NAME, WSL_INTEROP", "how `login` opens a browser"],
  ["DBUS_SESSION_BUS_ADDRESS", "the session bus of the keyring (Secret Service) provider"],
  ["NO_COLOR, TERM", "no colour when NO_COLOR is set or TERM=dumb"],
  ["LANG, LC_ALL, LC_CTYPE", "the locale passed to pinentry"],
  ["COLUMNS", "the help's width when stdout is not a terminal"],
  [
    "HOME, XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_RUNTIME_DIR, APPDATA, PATH",
    "where folders are; PATH: the real az",
  ],
  [
    "AZURE_CONFIG_DIR, AZD_CONFIG_DIR, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, CLOUDSDK_CONFIG, GOOGLE_APPLICATION_CREDENTIALS, KUBECONFIG",
    "where `doctor` and `import az` look for other tools' credentials",
  ],
];

export const FILES: readonly (readonly [string, string])[] = [
  ["<config folder>/profile.json", "signed-in accounts and subscriptions (no secrets)"],
  ["<config folder>/tokens.sealed", "refresh and access tokens, sealed with AES-256-GCM"],
  ["<config folder>/config.json", "the key provider and store settings; clouds.json: registered clouds"],
  ["<config folder>/tokens.key", "the key, only with the insecure-file provider"],
  [
    "<config folder>/release.log",
    "the agent's MAC-chained release log; release.log.1–3: its rotated files (8 MiB each); release.log.head: its MACed head",
  ],
  ["<runtime folder>/", "locks, the agent's socket, the refresh-failure memo"],
];

/** Words of `text` in lines of at most `width`, each indented by `indent`. */
export function wrapText(text: string, indent: number, width: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && indent + line.length + 1 + word.length > width) {
      out.push(" ".repeat(indent) + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(" ".repeat(indent) + line);
  return out;
}

function wrapEntry(term: string, text: string, width: number): string {
  return [...wrapText(term, 2, width), ...wrapText(text, 6, width)].join("\n");
}

/** The two sections, wrapped to `width`. */
export function environmentHelp(width: number): string {
  const w = Math.max(40, width);
  return (
    "\nEnvironment:\n" +
    ENVIRONMENT.map(([k, v]) => wrapEntry(k, v, w)).join("\n") +
    "\n\nFiles:\n" +
    FILES.map(([k, v]) => wrapEntry(k, v, w)).join("\n") +
    "\n"
  );
}
