/**
 * Who is on the other end of a loopback TCP connection, from `/proc` alone (Linux):
 * `/proc/net/tcp` (and `tcp6`, for dual-stack sockets) maps the client's port to its socket
 * inode; the process holding that inode has `socket:[inode]` among its `/proc/<pid>/fd` links.
 *
 * `azkeep exec` lets only the run's descendants call its endpoint, so the search starts from
 * the child and walks down (`/proc/<pid>/task/<tid>/children`), which is a handful of
 * processes, instead of scanning every process on the machine. Only when the caller is not a
 * descendant is the whole of `/proc` scanned, to name it in the log.
 *
 * The socket lookup is exec's own; the ancestry walk (with its reused-pid checks) is
 * `core/procfs.ts`'s, shared with the release policy.
 */
import { readFile, readdir, readlink } from "node:fs/promises";
import { isDescendantOf } from "../core/procfs.js";

/** The socket inode of the loopback connection whose client side uses `clientPort` to `serverPort`. */
export async function socketInode(
  clientPort: number,
  serverPort: number,
  procRoot = "/proc",
): Promise<string | undefined> {
  const local = clientPort.toString(16).toUpperCase().padStart(4, "0");
  const remote = serverPort.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = await readFile(`${procRoot}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length < 10) continue;
      const [, la, ra, , , , , , , inode] = f;
      if (!la || !ra || !inode || inode === "0") continue;
      if (la.endsWith(`:${local}`) && ra.endsWith(`:${remote}`) && isLoopback(la) && isLoopback(ra))
        return inode;
    }
  }
  return undefined;
}

/** `0100007F:…` (127.0.0.1, little-endian) or an IPv4-mapped / `::1` IPv6 address. */
function isLoopback(hexAddr: string): boolean {
  const ip = hexAddr.split(":")[0] ?? "";
  if (ip.length === 8) return ip.endsWith("7F"); // 127.x.x.x on a little-endian host
  if (ip.length === 32) {
    return (
      ip === "00000000000000000000000001000000" || // ::1
      (ip.startsWith("0000000000000000FFFF0000") && ip.endsWith("7F")) // ::ffff:127.x.x.x
    );
  }
  return false;
}

/** `pid` and all its descendants (threads' children included), parents first. */
export async function descendants(pid: number, procRoot = "/proc"): Promise<number[]> {
  const out: number[] = [];
  const seen = new Set<number>();
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(p);
    let tids: string[];
    try {
      tids = await readdir(`${procRoot}/${p}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      try {
        const kids = (await readFile(`${procRoot}/${p}/task/${tid}/children`, "utf8")).trim();
        for (const k of kids.split(/\s+/)) if (k) queue.push(Number(k));
      } catch {
        /* thread gone */
      }
    }
  }
  return out;
}

/** Whether process `pid` holds the socket `inode` among its open files. */
export async function holdsSocket(pid: number, inode: string, procRoot = "/proc"): Promise<boolean> {
  let fds: string[];
  try {
    fds = await readdir(`${procRoot}/${pid}/fd`);
  } catch {
    return false;
  }
  const want = `socket:[${inode}]`;
  for (const fd of fds) {
    try {
      if ((await readlink(`${procRoot}/${pid}/fd/${fd}`)) === want) return true;
    } catch {
      /* closed meanwhile */
    }
  }
  return false;
}

/** Every process holding `inode` (a scan of all of /proc: for naming a refused caller). */
export async function holdersAnywhere(inode: string, procRoot = "/proc"): Promise<number[]> {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = await readdir(procRoot);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    if (await holdsSocket(Number(e), inode, procRoot)) out.push(Number(e));
  }
  return out;
}

/** The executable of `pid`, or `?` when it cannot be read (another user's, or gone). */
export async function executable(pid: number, procRoot = "/proc"): Promise<string> {
  try {
    return await readlink(`${procRoot}/${pid}/exe`);
  } catch {
    return "?";
  }
}

export interface Peer {
  /** The calling process (the first descendant found holding the socket), or undefined. */
  pid: number | undefined;
  /** Whether it is the run's child or one of its descendants. */
  descendant: boolean;
  exe: string;
}

/**
 * Identifies the process on the client side of a loopback connection to `serverPort`, and
 * whether it descends from `root`. Unknown (no socket found, not Linux): not a descendant.
 */
export async function identifyPeer(
  clientPort: number,
  serverPort: number,
  root: number,
  procRoot = "/proc",
): Promise<Peer> {
  const inode = await socketInode(clientPort, serverPort, procRoot);
  if (!inode) return { pid: undefined, descendant: false, exe: "?" };
  for (const pid of await descendants(root, procRoot)) {
    if (await holdsSocket(pid, inode, procRoot)) {
      return { pid, descendant: true, exe: await executable(pid, procRoot) };
    }
  }
  const holders = await holdersAnywhere(inode, procRoot);
  const pid = holders[0];
  if (pid === undefined) return { pid: undefined, descendant: false, exe: "?" };
  // A process that forked after connecting is found by the walk up as well.
  const descendant = procRoot === "/proc" && isDescendantOf(pid, root);
  return { pid, descendant, exe: await executable(pid, procRoot) };
}
