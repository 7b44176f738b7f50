/**
 * azkeep's folders from the environment. Its own module, without the Context's network and
 * crypto imports: the agent lane of a cached `get-access-token` (`cli/agent-lane.ts`) needs
 * only the socket's place.
 */
import { homedir, userInfo } from "node:os";
import { isAbsolute, join } from "node:path";

export type Env = Readonly<Record<string, string | undefined>>;

/** Where azkeep keeps things. */
export interface Paths {
  /** azkeep's config folder (profile.json, tokens.sealed, config). */
  configDir: string;
  /** A per-user 0700 runtime folder for sockets and locks. */
  runtimeDir: string;
  home: string;
}

/**
 * The home folder: `HOME` when it is an absolute path, else the user database's entry. An
 * empty `HOME=` made `os.homedir()` answer "" and the store land in `./.config` of whatever
 * folder the command ran in.
 */
function homeFolder(env: Env): string {
  if (env.HOME && isAbsolute(env.HOME)) return env.HOME;
  if (env.HOME === undefined) return homedir();
  try {
    return userInfo().homedir;
  } catch {
    return homedir();
  }
}

/**
 * Resolves azkeep's folders: `AZKEEP_CONFIG_DIR`, else XDG, else the platform's usual place.
 * A relative `XDG_CONFIG_HOME` is ignored, as the XDG spec says; a relative `AZKEEP_CONFIG_DIR`
 * is kept as given and refused by the store with a message (`checkDirPath`).
 */
export function resolvePaths(env: Env, platform: NodeJS.Platform = process.platform): Paths {
  const home = homeFolder(env);
  let configDir = env.AZKEEP_CONFIG_DIR;
  if (!configDir) {
    if (platform === "darwin") configDir = join(home, "Library", "Application Support", "azkeep");
    else if (platform === "win32")
      configDir = join(env.APPDATA || join(home, "AppData", "Roaming"), "azkeep");
    else {
      const xdg = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : undefined;
      configDir = join(xdg ?? join(home, ".config"), "azkeep");
    }
  }
  const runtimeDir =
    env.AZKEEP_RUNTIME_DIR ||
    (platform === "linux" && env.XDG_RUNTIME_DIR
      ? join(env.XDG_RUNTIME_DIR, "azkeep")
      : join(configDir, "run"));
  return { configDir, runtimeDir, home };
}
