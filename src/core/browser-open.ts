/**
 * Opening the user's browser, loaded only by the browser sign-in flow.
 *
 * Threat: the authorize URL is built from a cloud's endpoints, which `cloud register` (or an
 * edited config) sets; a `$(…)`, `|` or `&` in it must never reach a shell. So every opener is
 * started with an argument vector (`spawn` without `shell`), the URL one element of it — never
 * inside a PowerShell or cmd command string. On Windows and WSL the opener is
 * `rundll32.exe url.dll,FileProtocolHandler URL` (the shell's URL handler, no command
 * interpreter); on WSL `wslview` (wslu) is tried first.
 */
import { spawn } from "node:child_process";
import type { Env } from "./context.js";

/** One way to open the URL: a program and its arguments, tried in order. */
export type OpenCommand = readonly [cmd: string, args: readonly string[]];

function trySpawn(cmd: string, args: readonly string[]): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      const child = spawn(cmd, [...args], { stdio: "ignore", detached: true, shell: false });
      child.once("error", () => resolve(false));
      child.once("spawn", () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}

/**
 * The commands that would open `url`, in the order tried: `$BROWSER` first (a `:`-separated
 * list, `%s` replaced by the URL, as Python's webbrowser and az honour it), else the
 * platform's opener. Empty on Linux with no display and no `$BROWSER` (the caller falls back
 * to the device code flow). Exported for tests: the URL is always one whole argument.
 */
export function browserCommands(url: string, env: Env, platform: NodeJS.Platform): OpenCommand[] {
  if (env.BROWSER) {
    const out: OpenCommand[] = [];
    for (const entry of env.BROWSER.split(":").filter(Boolean)) {
      const [cmd, ...rest] = entry.trim().split(/\s+/);
      if (!cmd) continue;
      // The URL replaces `%s` as a whole argument's part; it is never re-split or interpreted.
      const args = rest.some((a) => a.includes("%s"))
        ? rest.map((a) => a.split("%s").join(url))
        : [...rest, url];
      out.push([cmd, args]);
    }
    return out;
  }
  const windowsOpener: OpenCommand = ["rundll32.exe", ["url.dll,FileProtocolHandler", url]];
  if (platform === "darwin") return [["open", [url]]];
  if (platform === "win32") return [windowsOpener];
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) {
    if (env.WSL_DISTRO_NAME || env.WSL_INTEROP) return [["wslview", [url]], windowsOpener];
    return [];
  }
  return [["xdg-open", [url]]];
}

/** Opens `url` with the first command of `browserCommands` that starts. */
export async function openBrowser(
  url: string,
  env: Env,
  platform: NodeJS.Platform = process.platform,
): Promise<boolean> {
  for (const [cmd, args] of browserCommands(url, env, platform)) {
    if (await trySpawn(cmd, args)) return true;
  }
  return false;
}
