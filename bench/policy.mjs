// The release policy's cost on the agent's hot path: PolicyGate.decide for an approved caller
// (a real process on a real terminal, identified from /proc each time: exe, argv, ancestry,
// session), side by side with `--policy open` (which logs too) in the same run. The cached
// token itself costs the same behind either gate, so the difference is what the policy adds.
// `node bench/policy.mjs [--n 3000]`
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

(await import("./lib.mjs")).underTsx(import.meta.url);
const { PolicyGate } = await import("../src/agent/gate.ts");
const { deriveReleaseKeys } = await import("../src/agent/policy.ts");
const N = Number(process.argv[process.argv.indexOf("--n") + 1] || 3000);
const dir = mkdtempSync(join(tmpdir(), "azkeep-bench-policy-"));
const sock = join(dir, "tmux.sock");
const tmux = (...a) =>
  spawnSync("tmux", ["-S", sock, ...a], { encoding: "utf8", env: { ...process.env, TMUX: "" } });
try {
  if (tmux("new-session", "-d", "-s", "b", "sleep 600").status !== 0) throw new Error("tmux is needed");
  const pid = Number(tmux("list-panes", "-t", "b", "-F", "#{pane_pid}").stdout.trim());
  const keys = deriveReleaseKeys(Buffer.alloc(32, 3));
  const req = { peer: { pid, uid: 0, gid: 0 }, kind: "token", resource: "https://management.azure.com" };
  const gates = {
    open: new PolicyGate({ configDir: join(dir, "open"), mode: "open" }),
    ask: new PolicyGate({
      configDir: join(dir, "ask"),
      mode: "default",
      confirm: async () => ({ answer: "allow" }),
    }),
  };
  for (const [name, g] of Object.entries(gates)) {
    spawnSync("mkdir", ["-p", join(dir, name)]);
    g.setKeys(keys);
    const first = await g.decide(req); // ask: the one confirmation, then the session is approved
    if (!first.allow) throw new Error(`${name}: not allowed`);
  }
  const times = { open: [], ask: [] };
  for (let i = 0; i < N; i++)
    for (const [name, g] of Object.entries(gates)) {
      const t = process.hrtime.bigint();
      const d = await g.decide(req);
      times[name].push(Number(process.hrtime.bigint() - t) / 1e6);
      if (!d.allow) throw new Error(`${name}: denied ${d.rule}`);
    }
  await Promise.all(Object.values(gates).map((g) => g.releaseLog.flush()));
  const q = (a, p) => a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
  console.log(`release gate decide(), approved caller in a tmux pane, ${N} calls each (ms)`);
  console.log("gate         median    p99");
  for (const name of ["open", "ask"])
    console.log(
      `${name.padEnd(10)} ${q(times[name], 0.5).toFixed(3).padStart(8)} ${q(times[name], 0.99).toFixed(3).padStart(7)}`,
    );
  const add = q(times.ask, 0.99) - q(times.open, 0.99);
  console.log(
    `policy adds p99: ${add.toFixed(3)} ms (budget < 1 ms); rule of the last: ${(await gates.ask.decide(req)).rule}`,
  );
} finally {
  tmux("kill-server");
  rmSync(dir, { recursive: true, force: true });
}
