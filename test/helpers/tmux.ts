/**
 * A private tmux server for tests that need a real terminal: a pane whose tty a pinentry or a
 * CLI can use, keys typed into it (`send-keys`) and its screen read back (`capture-pane`).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmux extends AsyncDisposable {
  socket: string;
  /** Opens a pane running `command` (a shell line), returns its target, tty and pid. */
  pane(command: string, env?: Record<string, string>): { target: string; tty: string; pid: number };
  send(target: string, ...keys: string[]): void;
  /** Types text literally (no key names). */
  type(target: string, text: string): void;
  capture(target: string): string;
  /** Waits until the pane's screen matches; throws with the screen on timeout. */
  waitFor(target: string, re: RegExp, ms?: number): Promise<string>;
  killPane(target: string): void;
  /** Clears the pane's screen and history (a pane running a non-shell ignores C-l). */
  clear(target: string): void;
  kill(): void;
}

export function startTmux(): Tmux {
  const dir = mkdtempSync(join(tmpdir(), "azkeep-tmux-"));
  const socket = join(dir, "sock");
  let n = 0;
  const tmux = (args: string[]) => {
    const r = spawnSync("tmux", ["-S", socket, ...args], {
      encoding: "utf8",
      env: { ...process.env, TMUX: "" },
      timeout: 10_000,
    });
    if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
    return r.stdout;
  };
  const t: Tmux = {
    socket,
    pane(command, env = {}) {
      const name = `p${n++}`;
      const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
      tmux(["new-session", "-d", "-s", name, "-x", "200", "-y", "50", ...envArgs, command]);
      const [pid, tty] = tmux(["list-panes", "-t", name, "-F", "#{pane_pid} #{pane_tty}"]).trim().split(" ");
      return { target: name, tty: tty!, pid: Number(pid) };
    },
    send(target, ...keys) {
      tmux(["send-keys", "-t", target, ...keys]);
    },
    type(target, text) {
      tmux(["send-keys", "-t", target, "-l", "--", text]);
    },
    capture(target) {
      return tmux(["capture-pane", "-p", "-J", "-t", target]);
    },
    async waitFor(target, re, ms = 10_000) {
      const end = Date.now() + ms;
      let screen = "";
      while (Date.now() < end) {
        try {
          screen = t.capture(target);
        } catch {
          /* pane gone for a moment */
        }
        if (re.test(screen)) return screen;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for ${re} in the pane; screen:\n${screen}`);
    },
    clear(target) {
      tmux(["send-keys", "-R", "-t", target]);
      tmux(["clear-history", "-t", target]);
    },
    killPane(target) {
      tmux(["kill-session", "-t", target]);
    },
    kill() {
      spawnSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" });
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      t.kill();
      return Promise.resolve();
    },
  };
  return t;
}
