/** Test environments for child processes: a D-Bus session with gnome-keyring, a kernel session keyring. */
import { runProcess } from "../helpers/process.js";

/** The command prefix that runs `argv` under a fresh D-Bus session with an unlocked gnome-keyring. */
export function underGnomeKeyring(argv: string[]): [string, string[]] {
  return [
    "dbus-run-session",
    [
      "--",
      "sh",
      "-c",
      'printf azkeep-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$0" "$@"',
      ...argv,
    ],
  ];
}

/** The command prefix that runs `argv` in a new anonymous kernel session keyring. */
export function underKeyctlSession(argv: string[]): [string, string[]] {
  return ["keyctl", ["session", "-", ...argv]];
}

export const TSX = [process.execPath, "--import", "tsx"];

/**
 * Deletes azkeep's key `keyId` from the user's persistent kernel keyring, which would otherwise
 * keep it for days after the test: call it in `t.after`, so a failed assertion cleans up too.
 */
export async function forgetKeyutilsKey(keyId: string): Promise<void> {
  await runProcess("keyctl", [
    "session",
    "-",
    "sh",
    "-c",
    `keyctl get_persistent @s >/dev/null; keyctl invalidate %user:azkeep:${keyId} 2>/dev/null; true`,
  ]);
}
