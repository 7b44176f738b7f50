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
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isDescendantOf } from "../core/procfs.js";

/**
 * The socket tables, read at most once at a time: connections that arrive together (a burst
 * of new clients) share one read. A read that began before a connection existed may not show
 * it, so a caller whose socket is missing reads once more, afresh.
 */
let tableRead: { startedAt: number; texts: Promise<string[]> } | undefined;
let reads = 0;

function readTables(procRoot: string, notBefore: number): Promise<string[]> {
  if (procRoot === "/proc" && tableRead && tableRead.startedAt >= notBefore) return tableRead.texts;
  const startedAt = ++reads;
  const texts = Promise.all(
    ["tcp", "tcp6"].map((t) => readFile(`${procRoot}/net/${t}`, "latin1").catch(() => "")),
  );
  if (procRoot === "/proc") {
    tableRead = { startedAt, texts };
    void texts.finally(() => {
      if (tableRead?.startedAt === startedAt) tableRead = undefined;
    });
  }
  return texts;
}

/** The socket inode of the loopback connection whose client side uses `clientPort` to `serverPort`. */
export async function socketInode(
  clientPort: number,
  serverPort: number,
  procRoot = "/proc",
): Promise<string | undefined> {
  const local = clientPort.toString(16).toUpperCase().padStart(4, "0");
  const remote = serverPort.toString(16).toUpperCase().padStart(4, "0");
  // First join a read under way (a burst shares it); if it began too early to show this
  // connection, read afresh (`reads + 1`: only a read begun from now on will do).
  return (
    findInode(await readTables(procRoot, 0), local, remote) ??
    findInode(await readTables(procRoot, reads + 1), local, remote)
  );
}

function findInode(texts: string[], local: string, remote: string): string | undefined {
  // Only the lines holding the client's port are parsed: most of a busy machine's table is
  // other connections.
  const needle = `:${local} `;
  for (const text of texts) {
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
      const start = text.lastIndexOf("\n", at) + 1;
      const end = text.indexOf("\n", at);
      const f = text
        .slice(start, end < 0 ? undefined : end)
        .trim()
        .split(/\s+/);
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
      tids = readdirSync(`${procRoot}/${p}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      try {
        const kids = readFileSync(`${procRoot}/${p}/task/${tid}/children`, "latin1").trim();
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
    fds = readdirSync(`${procRoot}/${pid}/fd`);
  } catch {
    return false;
  }
  const want = `socket:[${inode}]`;
  for (const fd of fds) {
    try {
      if (readlinkSync(`${procRoot}/${pid}/fd/${fd}`) === want) return true;
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
    entries = readdirSync(procRoot);
  } catch {
    return out;
  }
  let n = 0;
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    // The reads are synchronous (fast on /proc); a long scan still lets requests through.
    if (++n % 16 === 0) await new Promise((r) => setImmediate(r));
    if (await holdsSocket(Number(e), inode, procRoot)) out.push(Number(e));
  }
  return out;
}

/** The executable of `pid`, or `?` when it cannot be read (another user's, or gone). */
export async function executable(pid: number, procRoot = "/proc"): Promise<string> {
  try {
    return readlinkSync(`${procRoot}/${pid}/exe`);
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
