/**
 * Process hardening of the agent, through `koffi` (an FFI with prebuilt binaries inside its
 * per-platform npm packages; no install script is needed): the peer's credentials of an
 * accepted unix-socket connection (`getsockopt(SO_PEERCRED)`, which Node has no API for) and
 * `prctl(PR_SET_DUMPABLE, 0)`.
 *
 * Loaded only by the agent's own processes, never by a client: koffi costs ~15 ms to load.
 *
 * Threats:
 * - another local user connecting to the socket: refused by peer uid (SO_PEERCRED), on top of
 *   the socket's 0600 mode in a 0700 folder;
 * - a program of the same user reading the agent's memory (ptrace, /proc/PID/mem, a core
 *   dump): non-dumpable processes refuse all three to non-root processes (the kernel's
 *   ptrace access mode check requires CAP_SYS_PTRACE for a non-dumpable target).
 *
 * Fallback when koffi cannot load (an unsupported platform, a stripped install): peer
 * credentials are unknown (`undefined`) and the socket's file mode is the only uid check (the
 * kernel requires write permission on the socket file to connect); the process stays dumpable.
 * `azkeep agent status` says which is in force.
 */
import { createRequire } from "node:module";

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

interface Native {
  getsockopt(fd: number, level: number, name: number, out: Buffer, len: number[]): number;
  prctl(option: number, a2: number, a3: number, a4: number, a5: number): number;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const PR_GET_DUMPABLE = 3;
const PR_SET_DUMPABLE = 4;

let native: Native | null | undefined;
let loadError: string | undefined;

function load(): Native | null {
  if (native !== undefined) return native;
  native = null;
  if (process.platform !== "linux") {
    loadError = `not supported on ${process.platform}`;
    return native;
  }
  try {
    const require = createRequire(import.meta.url);
    const koffi = require("koffi") as {
      load(name: string): { func(decl: string): (...args: unknown[]) => unknown };
    };
    const libc = koffi.load("libc.so.6");
    const gs = libc.func(
      "int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)",
    );
    const pc = libc.func(
      "int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)",
    );
    native = {
      getsockopt: (fd, level, name, out, len) => gs(fd, level, name, out, len) as number,
      prctl: (o, a, b, c, d) => pc(o, a, b, c, d) as number,
    };
  } catch (e) {
    loadError = (e as Error).message;
    native = null;
  }
  return native;
}

/** Why the native calls are unavailable, when they are. */
export function hardeningUnavailableReason(): string | undefined {
  load();
  return loadError;
}

/** The kernel's credentials of the process at the other end of the socket `fd`; undefined when unknown. */
export function peerCredentials(fd: number | undefined): PeerCredentials | undefined {
  const n = load();
  if (!n || typeof fd !== "number" || fd < 0) return undefined;
  const buf = Buffer.alloc(12);
  const len = [12];
  if (n.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, len) !== 0 || len[0] !== 12) return undefined;
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}

/**
 * Makes this process non-dumpable: no core dump, and no ptrace attach or /proc/PID/mem read by
 * other processes of the same user (only root, with CAP_SYS_PTRACE, still can). Returns whether
 * it is now non-dumpable.
 */
export function makeNonDumpable(): boolean {
  const n = load();
  if (!n) return false;
  n.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  return n.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) === 0;
}
