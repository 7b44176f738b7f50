/**
 * azkeep side by side with the real Azure CLI 2.45 (Debian's azure-cli), both signed in as
 * alice through the emulator's CONNECT proxy (stock AzureCloud): the outputs scripts parse —
 * `account list`, `account show`, `account get-access-token` and `rest` under `-o json|tsv|
 * table|yaml`, with and without `--query` — and the exit codes of the error cases (bad flag, bad
 * query, unknown subscription). Outputs are compared after normalizing what must differ (the
 * tokens, the times) and dropping the fields newer az versions added that 2.45 lacks
 * (`expires_on` from 2.54, `tenantDisplayName`/`tenantDefaultDomain`): field order, quoting,
 * column order and widths, booleans and formats must be the same.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { AZ_INSTALL, azConfigDir, azEnv } from "../helpers/az.js";
import { hasCommand, requireTool } from "../helpers/require-tool.js";
import { signedIn, type SignedIn } from "../tokens/signed-in.js";
import { SEEDED, start, type RunResult } from "./helpers.js";

/** Fields azkeep prints that az 2.45 does not (newer az versions do). */
const NEWER = ["expires_on", "tenantDefaultDomain", "tenantDisplayName"];
const NEWER_HEADERS = NEWER.map((k) => k.charAt(0).toUpperCase() + k.slice(1));

const TOKEN = /eyJ[\w-]+\.[\w-]+\.[\w-]+/g;
const TIME = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}/g;
const scrub = (s: string) => s.replace(TOKEN, "<TOKEN>").replace(TIME, "<TIME>");

/** `-o table` as columns: header, width (from the dashes; `*` where a token sets it), cells. */
function tableColumns(text: string): { header: string; width: number | "*"; cells: string[] }[] {
  const lines = text.replace(/\n$/, "").split("\n");
  if (lines.length < 2) return [{ header: text, width: 0, cells: [] }];
  const spans: [number, number][] = [];
  for (const m of lines[1]!.matchAll(/-+/g)) spans.push([m.index, m.index + m[0].length]);
  const cols = spans.map(([a, b], i) => {
    const cut = (l: string) => (i === spans.length - 1 ? l.slice(a) : l.slice(a, b)).trim();
    const cells = lines.slice(2).map(cut);
    const hasToken = cells.some((c) => /^eyJ/.test(c));
    return { header: cut(lines[0]!), width: hasToken ? ("*" as const) : b - a, cells: cells.map(scrub) };
  });
  return cols.filter((c) => !NEWER_HEADERS.includes(c.header));
}

/** tsv lines with the columns of the newer fields dropped (their positions: sorted keys). */
function tsvWithout(text: string, extraIdx: number[]): string {
  return text
    .split("\n")
    .map((l) =>
      l === ""
        ? l
        : l
            .split("\t")
            .filter((_, i) => !extraIdx.includes(i))
            .join("\t"),
    )
    .join("\n");
}

function dropLines(text: string, re: RegExp): string {
  return text
    .split("\n")
    .filter((l) => !re.test(l))
    .join("\n");
}

describe("azkeep and the real az 2.45 print the same (emulator, proxy)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  let root: string;
  let azDir: string;

  before(async () => {
    if (!hasCommand("az")) return;
    root = mkdtempSync(join(tmpdir(), "azkeep-conformance-"));
    s = await signedIn();
    azDir = azConfigDir(root, "az");
    const login = await az(["login", "-u", SEEDED.alice.upn, "-p", SEEDED.alice.password, "-o", "none"]);
    assert.equal(login.code, 0, login.stderr);
    // Both have a cached ARM token from here on.
    const [a, k] = await Promise.all([
      az(["account", "get-access-token", "-o", "none"]),
      azkeep(["account", "get-access-token", "-o", "none"]),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(k.code, 0, k.stderr);
  });
  after(async () => {
    await s?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function az(args: string[]): Promise<RunResult> {
    return start("az", args, azEnv(root, azDir, s.emu.urls.proxy!, s.emu.caCertPath!), 60_000).done;
  }
  async function azkeep(args: string[]): Promise<RunResult> {
    const r = await s.cli(args);
    return { code: r.code, signal: null, stdout: r.stdout, stderr: r.stderr };
  }
  function ready(t: TestContext): boolean {
    return requireTool(t, "az", AZ_INSTALL);
  }

  const REST_URL = "https://management.azure.com/subscriptions?api-version=2022-12-01";
  const commands: { name: string; args: string[]; query: string }[] = [
    { name: "account list", args: ["account", "list"], query: "[].{Name:name, Id:id, Default:isDefault}" },
    { name: "account show", args: ["account", "show"], query: "{Name:name, Tenant:tenantId, Id:id}" },
    {
      name: "account get-access-token",
      args: ["account", "get-access-token"],
      query: "{Type:tokenType, Token:accessToken, Expires:expiresOn}",
    },
    {
      name: "rest",
      args: ["rest", "--method", "get", "--url", REST_URL],
      query: "value[].{Name:displayName, Sub:subscriptionId, State:state}",
    },
  ];

  for (const c of commands) {
    it(`${c.name}: -o json|tsv|table|yaml, with and without --query`, async (t) => {
      if (!ready(t)) return;
      // The column positions of the newer fields in tsv (a dict's keys sorted, as knack does).
      const json = await azkeep([...c.args, "-o", "json"]);
      assert.equal(json.code, 0, json.stderr);
      const v = JSON.parse(json.stdout) as unknown;
      const first = (Array.isArray(v) ? v[0] : v) as Record<string, unknown>;
      const extraIdx = Object.keys(first)
        .sort()
        .flatMap((k, i) => (NEWER.includes(k) ? [i] : []));
      const newerLine = new RegExp(`^\\s*(- )?"?(${NEWER.join("|")})"?: `);

      for (const query of [undefined, c.query]) {
        const q = query ? ["--query", query] : [];
        // The four formats at once (each az call is a Python start-up of ~1 s).
        await Promise.all(
          (["json", "tsv", "table", "yaml"] as const).map(async (format) => {
            const args = [...c.args, ...q, "-o", format];
            const [a, k] = await Promise.all([az(args), azkeep(args)]);
            const what = args.join(" ");
            assert.equal(a.code, 0, `az ${what}: ${a.stderr}`);
            assert.equal(k.code, 0, `azkeep ${what}: ${k.stderr}`);
            if (format === "table") {
              assert.deepEqual(tableColumns(k.stdout), tableColumns(a.stdout), what);
            } else if (format === "tsv") {
              const drop = query ? [] : extraIdx;
              assert.equal(scrub(tsvWithout(k.stdout, drop)), scrub(a.stdout), what);
            } else {
              assert.equal(scrub(dropLines(k.stdout, newerLine)), scrub(a.stdout), what);
            }
          }),
        );
      }
    });
  }

  const errors: { name: string; args: string[] }[] = [
    { name: "bad flag (account show --bogus)", args: ["account", "show", "--bogus"] },
    { name: "bad flag (get-access-token --bogus)", args: ["account", "get-access-token", "--bogus"] },
    { name: "bad query", args: ["account", "list", "--query", "[?"] },
    { name: "bad query (get-access-token)", args: ["account", "get-access-token", "--query", "{a:"] },
    { name: "unknown subscription (show)", args: ["account", "show", "-s", "no-such-sub"] },
    { name: "unknown subscription (token)", args: ["account", "get-access-token", "-s", "no-such-sub"] },
    { name: "bad output format", args: ["account", "show", "-o", "xml"] },
  ];
  it("error cases: the same exit code, an ERROR line, nothing on stdout", async (t) => {
    if (!ready(t)) return;
    const runs = await Promise.all(
      errors.map(async (e) => [e, ...(await Promise.all([az(e.args), azkeep(e.args)]))] as const),
    );
    for (const [e, a, k] of runs) {
      assert.notEqual(a.code, 0, `az ${e.name}`);
      assert.equal(k.code, a.code, `${e.name}: az exits ${a.code}, azkeep ${k.code}: ${k.stderr}`);
      assert.equal(k.stdout, "", e.name);
      // (A WARNING about the test's plain-file key provider may come first.)
      const kError = k.stderr.slice(k.stderr.search(/^ERROR: /m));
      assert.match(kError, /^ERROR: /, e.name);
      assert.doesNotMatch(k.stderr, /\n\s+at |bug in azkeep/, e.name);
      // The messages scripts match on: az's first line (the command name aside) begins azkeep's.
      const azFirst = a.stderr.split("\n")[0]!.replace(/^ERROR: az [a-z -]+: /, "ERROR: ");
      if (/invalid jmespath_type|not found|is not a valid value/.test(azFirst))
        assert.ok(kError.startsWith(azFirst), `${e.name}:\n${azFirst}\n${k.stderr}`);
    }
  });
});
