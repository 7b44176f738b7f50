/** Opening the user's browser, loaded only by the browser sign-in flow. */
import { spawn } from "node:child_process";
import type { Env } from "./context.js";

function trySpawn(cmd: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      const child = spawn(cmd, args, { stdio: "ignore", detached: true });
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
 * Opens `url`: `$BROWSER` first (a `:`-separated list, `%s` replaced by the URL, as Python's
 * webbrowser and az honour it), else the platform opener. On Linux with no display and no
 * `$BROWSER`, returns false so the caller can fall back to the device code flow.
 */
export async function openBrowser(
  url: string,
  env: Env,
  platform: NodeJS.Platform = process.platform,
): Promise<boolean> {
  if (env.BROWSER) {
    for (const entry of env.BROWSER.split(":").filter(Boolean)) {
      const parts = entry.trim().split(/\s+/);
      const [cmd, ...rest] = parts;
      if (!cmd) continue;
      const args = rest.some((a) => a.includes("%s"))
        ? rest.map((a) => a.replace("%s", url))
        : [...rest, url];
      if (await trySpawn(cmd, args)) return true;
    }
    return false;
  }
  if (platform === "darwin") return trySpawn("open", [url]);
  if (platform === "win32") return trySpawn("cmd", ["/c", "start", '""', url.replace(/&/g, "^&")]);
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) {
    if (env.WSL_DISTRO_NAME)
      return trySpawn("powershell.exe", ["-NoProfile", "-Command", `Start-Process "${url}"`]);
    return false;
  }
  return trySpawn("xdg-open", [url]);
}
