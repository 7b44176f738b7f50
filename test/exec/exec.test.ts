/**
 * `azkeep exec -- CMD` end to end: the built CLI, signed in to the emulator (through its
 * proxy, as in production), runs real clients nobody here wrote — @azure/identity with
 * @azure/arm-resources, @azure/msal-node, Debian's Python azure-identity, the Azure CLI 2.45,
 * and a byte-exact replay of go-azure-sdk's request — and they get their tokens from the run's
 * endpoint. Then: what the child can never see, what is refused (and logged), and the
 * launcher's behaviour (exit codes, signals, nesting, stripped variables).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { BIN } from "../helpers/cli.js";
import { hasCommand, requireTool } from "../helpers/require-tool.js";
import { jwtClaims } from "../helpers/jwt.js";
import { AZ_INSTALL } from "../helpers/az.js";
import { DEV_SUB, REPO, signedIn, type SignedIn } from "../tokens/signed-in.js";
import { killAgent, startAgent } from "../agent/helpers.js";

const NODE_CLIENT = fileURLToPath(new URL("./clients/node-client.mjs", import.meta.url));
const PY_CLIENT = fileURLToPath(new URL("./clients/py-client.py", import.meta.url));
const PY_INSTALL = "apt-get install -y python3-azure";
/** `node -e` body: one App Service request with the child's variables; prints the body or the error code. */
const GET_TOKEN = `require("node:http").get(process.env.IDENTITY_ENDPOINT + "?api-version=2019-08-01&resource=https://management.azure.com", { headers: { "X-IDENTITY-HEADER": process.env.IDENTITY_HEADER } }, (r) => r.pipe(process.stdout)).on("error", (e) => console.log(e.code));`;

function pyAzureIdentity(): boolean {
  return existsSync("/usr/lib/python3/dist-packages/azure/identity/__init__.py");
}

describe("azkeep exec (e2e, real clients, emulator through its proxy)", { timeout: 600_000 }, () => {
  let s: SignedIn;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    s = await signedIn();
    dir = mkdtempSync(join(tmpdir(), "azkeep-exec-test-"));
    env = {
      ...s.env,
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      LANG: "C.UTF-8",
      TZ: "UTC",
      AZURE_CORE_COLLECT_TELEMETRY: "false",
      AZURE_CORE_NO_COLOR: "true",
      AZURE_CORE_SURVEY_MESSAGE: "false",
    };
  });
  after(async () => {
    await s?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const exec = (args: string[], o: { env?: Record<string, string>; timeoutMs?: number } = {}) =>
    s.cli(["exec", ...args], { env: { ...env, ...o.env }, timeoutMs: o.timeoutMs ?? 120_000 });

  const logFile = (name: string) => join(dir, `${name}.log`);

  for (const kind of ["mi", "default"]) {
    it(`@azure/identity ${kind === "mi" ? "ManagedIdentityCredential" : "DefaultAzureCredential"} lists resource groups with @azure/arm-resources`, async () => {
      const log = logFile(`node-${kind}`);
      const before = await s.emu.control.countRequests({ endpoint: "resourcegroups" });
      const r = await exec(["--log", log, "--", process.execPath, NODE_CLIENT, kind]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { names: string[]; expiresOnTimestamp: number; token: string };
      assert.ok(out.names.includes("rg-dev-app"), out.names.join(","));
      assert.ok(out.expiresOnTimestamp > Date.now() + 300_000);
      const c = jwtClaims(out.token);
      assert.equal(c.upn, "alice@contoso.onmicrosoft.com");
      assert.equal(c.aud, "https://management.azure.com");
      assert.ok((await s.emu.control.countRequests({ endpoint: "resourcegroups" })) > before);
      const lines = readFileSync(log, "utf8");
      assert.match(
        lines,
        /exe=\S*node\S* route=app-service audience=https:\/\/management\.azure\.com outcome=ok status=200/,
      );
    });
  }

  it("@azure/msal-node's ManagedIdentityApplication gets a token (App Service source)", async () => {
    const r = await exec(["--", process.execPath, NODE_CLIENT, "msal"]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { source: string; expiresOn: number; token: string };
    assert.equal(out.source, "AppService");
    assert.ok(out.expiresOn > Date.now() + 300_000);
    assert.equal(jwtClaims(out.token).aud, "https://management.azure.com");
  });

  for (const kind of ["mi", "default"]) {
    it(`Debian's Python azure-identity ${kind === "mi" ? "ManagedIdentityCredential" : "DefaultAzureCredential"} gets a token`, async (t) => {
      if (!pyAzureIdentity()) {
        if (process.env.CI === "true") throw new Error(`python3-azure is missing: ${PY_INSTALL}`);
        return t.skip(`python3-azure is missing: ${PY_INSTALL}`);
      }
      const r = await exec([
        "--",
        "/usr/bin/python3",
        PY_CLIENT,
        kind,
        "https://management.azure.com/.default",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as {
        ok: boolean;
        token: string;
        expires_on: number;
        message?: string;
      };
      assert.ok(out.ok, out.message);
      assert.ok(out.expires_on > Date.now() / 1000 + 300);
      assert.equal(jwtClaims(out.token).upn, "alice@contoso.onmicrosoft.com");
    });
  }

  it("the Azure CLI 2.45 runs `az login --identity`, then `az group list` against the emulator's ARM", async (t) => {
    if (!requireTool(t, "az", AZ_INSTALL)) return;
    const log = logFile("az");
    // Pre-seeded versionCheck.json: az skips its update check (it would go to the internet).
    const version = JSON.stringify({
      versions: {
        "azure-cli": { local: "2.45.0" },
        core: { local: "2.45.0" },
        telemetry: { local: "1.0.8" },
      },
      update_time: new Date().toISOString().replace("T", " ").replace("Z", "000"),
    });
    writeFileSync(join(dir, "versionCheck.json"), version);
    const script = [
      `cp ${join(dir, "versionCheck.json")} "$AZURE_CONFIG_DIR/"`,
      'az login --identity -o json > "$AZURE_CONFIG_DIR/login.json" || exit 11',
      'cat "$AZURE_CONFIG_DIR/login.json"',
      "echo ---",
      "az group list -o json || exit 12",
    ].join(" && ");
    const r = await exec(["--log", log, "--", "sh", "-c", script], {
      env: { HTTP_PROXY: s.env.HTTPS_PROXY! },
      timeoutMs: 240_000,
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const [login, groups] = r.stdout.split("---\n");
    const subs = JSON.parse(login!) as { id: string; user: { name: string; type: string } }[];
    assert.ok(
      subs.some((x) => x.id === DEV_SUB),
      login,
    );
    assert.equal(subs[0]!.user.name, "systemAssignedIdentity");
    const names = (JSON.parse(groups!) as { name: string }[]).map((g) => g.name);
    assert.ok(names.includes("rg-dev-app"), groups);
    const lines = readFileSync(log, "utf8");
    // msrestazure's Cloud Shell form (POST to MSI_ENDPOINT), by the python3 running az
    assert.match(lines, /exe=\S*python3\S* route=msi audience=https:\/\/management\.azure\.com outcome=ok/);
    // …and the user's own ~/.azure was not touched: az wrote into the run's folder.
    assert.ok(!existsSync(join(s.home, ".azure", "azureProfile.json")));
  });

  // go-azure-sdk's azureMetadata(): GET endpoint + "?" + url.Values{…}.Encode(), header
  // Metadata: true, Go's User-Agent and Accept-Encoding. Older releases use ARM_MSI_ENDPOINT
  // with api-version 2018-02-01; newer ones, when MSI_ENDPOINT and MSI_SECRET are set, use
  // MSI_ENDPOINT with 2019-08-01 and add x-ms-identity: IDENTITY_HEADER.
  for (const shape of ["ARM_MSI_ENDPOINT", "MSI_ENDPOINT"] as const) {
    it(`a byte-exact replay of go-azure-sdk's request through ${shape} gets a token it would renew`, async () => {
      const replay = `
        const net = require("node:net");
        const newer = process.argv[1] === "MSI_ENDPOINT";
        const u = new URL(process.env[process.argv[1]]);
        const q = new URLSearchParams([["api-version", newer ? "2019-08-01" : "2018-02-01"], ["resource", "https://management.azure.com/"]]);
        const s = net.connect(Number(u.port), u.hostname);
        let data = "";
        s.on("data", (d) => (data += d));
        s.on("end", () => process.stdout.write(data));
        s.write("GET " + u.pathname + "?" + q + " HTTP/1.1\\r\\nHost: " + u.host + "\\r\\nUser-Agent: Go-http-client/1.1\\r\\nMetadata: true\\r\\n" +
          (newer ? "X-Ms-Identity: " + process.env.IDENTITY_HEADER + "\\r\\n" : "") + "Accept-Encoding: gzip\\r\\nConnection: close\\r\\n\\r\\n");
      `;
      const r = await exec(["--", process.execPath, "-e", replay, shape]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^HTTP\/1\.1 200 /);
      const body = JSON.parse(r.stdout.slice(r.stdout.indexOf("\r\n\r\n") + 4)) as Record<string, string>;
      // tokenRes.ExpiresIn.(string) → strconv.Atoi: without it the token would never renew.
      assert.match(body.expires_in!, /^\d+$/);
      assert.ok(Number(body.expires_in) > 300);
      assert.match(jwtClaims(body.access_token!).aud as string, /^https:\/\/management\.azure\.com\/?$/);
    });
  }

  it("the child never holds a refresh token: not in its environment, config-folder files or responses", async () => {
    const secrets = await s.secrets();
    const needles = [
      ...secrets.refreshTokens.map((t) => t.secret),
      ...secrets.servicePrincipals.flatMap((p) =>
        p.credential.kind === "secret" ? [p.credential.secret] : [],
      ),
    ];
    assert.ok(needles.length > 0 && needles.every((n) => n.length > 20));
    const dump = `
      const fs = require("node:fs"), path = require("node:path"), { execFileSync } = require("node:child_process");
      const GET = ${JSON.stringify(GET_TOKEN)};
      let out = JSON.stringify(process.env) + "\\n" + fs.readFileSync("/proc/self/environ", "latin1") + "\\n";
      const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p); else { try { out += p + "\\n" + fs.readFileSync(p, "latin1") + "\\n"; } catch {} } } };
      for (const d of [process.env.AZKEEP_CONFIG_DIR, process.env.AZURE_CONFIG_DIR]) if (d && fs.existsSync(d)) walk(d);
      out += execFileSync(process.execPath, ["-e", GET]);
      out += execFileSync("az", ["account", "get-access-token", "-o", "json"]);
      out += execFileSync("az", ["account", "show", "-o", "json"]);
      process.stdout.write(out);
    `;
    const r = await exec(["--", process.execPath, "-e", dump]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"access_token":"eyJ/, "the dump holds the responses");
    assert.match(r.stdout, /"accessToken": "eyJ/, "the dump holds the shim's answer");
    assert.match(r.stdout, /tokens\.sealed/, "the dump read the config folder");
    for (const n of needles) assert.ok(!r.stdout.includes(n), "a refresh token or secret reached the child");
    assert.doesNotMatch(r.stdout, /refresh_token/i);
  });

  it("refuses a process that is not part of the run (403, one log line), and forwards SIGTERM", async () => {
    const log = logFile("outsider");
    const handoff = join(dir, "endpoint.txt");
    const child = spawn(
      process.execPath,
      [
        BIN,
        "exec",
        "--log",
        log,
        "--",
        "sh",
        "-c",
        `echo "$IDENTITY_ENDPOINT $IDENTITY_HEADER" > ${handoff}; exec sleep 60`,
      ],
      { env, cwd: REPO, detached: true, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!existsSync(handoff) || !readFileSync(handoff, "utf8").includes(" ")) {
        assert.ok(Date.now() < deadline, `exec did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const [endpoint, secret] = readFileSync(handoff, "utf8").trim().split(" ");
      // The right secret, from a process outside the run (this test): refused.
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          `${endpoint}?api-version=2019-08-01&resource=https://management.azure.com`,
          { headers: { "X-IDENTITY-HEADER": secret! }, agent: false },
          (m) => {
            let b = "";
            m.on("data", (d: Buffer) => (b += d.toString()));
            m.on("end", () => resolve({ status: m.statusCode ?? 0, body: b }));
          },
        );
        req.on("error", reject);
        req.end();
      });
      assert.equal(res.status, 403);
      assert.doesNotMatch(res.body, /access_token/);
      process.kill(child.pid!, "SIGTERM");
      assert.equal(await exited, 143, "the child's own end (128 + SIGTERM) is exec's exit code");
      const refused = readFileSync(log, "utf8")
        .split("\n")
        .filter((l) => l.includes("outcome=refused"));
      assert.equal(refused.length, 1, refused.join("\n"));
      assert.match(
        refused[0]!,
        new RegExp(
          `pid=${process.pid} exe=\\S*node\\S* route=app-service .*status=403 reason="The caller is not a process of this azkeep exec run\\."`,
        ),
      );
      assert.match(stderr, /WARNING: azkeep exec refused a token request/);
    } finally {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  });

  it("refuses wrong secret, wrong Host and scopes outside --allow-scope, one log line each; the child's chains fail fast", async () => {
    const log = logFile("refusals");
    const script = `
      const http = require("node:http");
      const get = (url, headers) => new Promise((res) => http.get(url, { headers, agent: false }, (m) => { let b = ""; m.on("data", (d) => (b += d)); m.on("end", () => res(m.statusCode)); }));
      (async () => {
        const u = process.env.IDENTITY_ENDPOINT + "?api-version=2019-08-01&resource=";
        const arm = u + "https://management.azure.com";
        const out = {
          missing: await get(arm, {}),
          wrong: await get(arm, { "X-IDENTITY-HEADER": "f".repeat(64) }),
          host: await get(arm, { "X-IDENTITY-HEADER": process.env.IDENTITY_HEADER, Host: "attacker.example" }),
          scope: await get(u + "https://vault.azure.net", { "X-IDENTITY-HEADER": process.env.IDENTITY_HEADER }),
          allowed: await get(arm, { "X-IDENTITY-HEADER": process.env.IDENTITY_HEADER }),
        };
        process.stdout.write(JSON.stringify(out));
      })();
    `;
    const r = await exec([
      "--allow-scope",
      "https://management.azure.com/.default",
      "--log",
      log,
      "--",
      process.execPath,
      "-e",
      script,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { missing: 403, wrong: 403, host: 403, scope: 403, allowed: 200 });
    const refused = readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => l.includes("outcome=refused"));
    assert.equal(refused.length, 4, refused.join("\n"));
    assert.match(refused[0]!, /reason="No secret was presented\."/);
    assert.match(refused[1]!, /reason="Wrong secret\."/);
    assert.match(refused[2]!, /reason="The Host header is not this endpoint's address\."/);
    assert.match(
      refused[3]!,
      /audience=https:\/\/vault\.azure\.net outcome=refused status=403 reason=".*allow-scope/,
    );

    // DefaultAzureCredential for a refused audience: an error, quickly (no retry loop, no hang).
    const g = await exec(
      [
        "--allow-scope",
        "https://management.azure.com/.default",
        "--",
        process.execPath,
        NODE_CLIENT,
        "graph",
      ],
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(g.code, 0, g.stderr);
    const go = JSON.parse(g.stdout) as { ok: boolean; ms: number; message: string };
    assert.equal(go.ok, false);
    assert.ok(go.ms < 15_000, `took ${go.ms} ms`);
    assert.match(go.message, /allow-scope/);
    if (pyAzureIdentity()) {
      const p = await exec(
        [
          "--allow-scope",
          "https://management.azure.com/.default",
          "--",
          "/usr/bin/python3",
          PY_CLIENT,
          "mi",
          "https://graph.microsoft.com/.default",
        ],
        { timeoutMs: 60_000 },
      );
      const po = JSON.parse(p.stdout) as { ok: boolean; s: number; message: string };
      assert.equal(po.ok, false);
      assert.ok(po.s < 15, `took ${po.s} s`);
      assert.match(po.message, /allow-scope/);
    }
  });

  it("the az shim in exec mode answers from the endpoint, within the run's subscription and tenant", async () => {
    // The shim's store would be an empty folder: it never looks there, it asks the endpoint.
    const script = [
      "export AZKEEP_CONFIG_DIR=/nonexistent/azkeep",
      "az account show --query id -o tsv",
      "az account show --query environmentName -o tsv",
      'az account list --query "[0].cloudName" -o tsv',
      "az account get-access-token --resource https://vault.azure.net --query tenant -o tsv",
      "az account get-access-token --subscription 00000000-0000-0000-0000-000000000000 || echo refused-sub",
      "az account get-access-token --tenant 99999999-9999-9999-9999-999999999999 || echo refused-tenant",
    ].join("; ");
    const r = await exec(["--", "sh", "-c", script]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines[0], DEV_SUB);
    assert.equal(lines[1], "AzureCloud");
    assert.equal(lines[2], "AzureCloud");
    assert.equal(lines[3], "11111111-1111-1111-1111-111111111111");
    assert.ok(lines.includes("refused-sub") && lines.includes("refused-tenant"), r.stdout);
    assert.match(r.stderr, /This azkeep exec run is for subscription/);
    assert.match(r.stderr, /This azkeep exec run is for tenant/);
  });

  it("exits with the child's code; refuses nesting unless --nested; strips other credentials with a warning", async () => {
    assert.equal((await exec(["--", "sh", "-c", "exit 3"])).code, 3);
    const missing = await exec(["--", "no-such-command-azkeep"]);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /^ERROR: 'no-such-command-azkeep' was not found\.$/m);

    const nested = await exec(["--", process.execPath, BIN, "exec", "--", "true"]);
    assert.equal(nested.code, 2);
    assert.match(nested.stderr, /ERROR: This process already runs inside `azkeep exec`/);
    assert.match(nested.stderr, /--nested/);
    assert.equal((await exec(["--", process.execPath, BIN, "exec", "--nested", "--", "true"])).code, 0);

    const stripped = await exec(
      [
        "--",
        "sh",
        "-c",
        'echo "[${AZURE_CLIENT_SECRET-unset}][${ARM_CLIENT_SECRET-unset}][$AZURE_TOKEN_CREDENTIALS][$ARM_SUBSCRIPTION_ID][$ARM_USE_MSI]"',
      ],
      {
        env: { AZURE_CLIENT_SECRET: "s3cret-value-1", ARM_CLIENT_SECRET: "s3cret-value-2" },
      },
    );
    assert.equal(stripped.code, 0, stripped.stderr);
    assert.equal(stripped.stdout.trim(), `[unset][unset][ManagedIdentityCredential][${DEV_SUB}][true]`);
    assert.match(
      stripped.stderr,
      /WARNING: azkeep exec removed AZURE_CLIENT_SECRET, ARM_CLIENT_SECRET from the child's environment/,
    );
    assert.doesNotMatch(stripped.stderr, /s3cret-value/);
  });

  it("the endpoint dies with the child: a background process left behind gets no token", async () => {
    const out = join(dir, "after.txt");
    const script = `(sleep 1; "$0" -e "$1" > ${out} 2>&1; echo " rc=$?" >> ${out}) & exit 0`;
    const r = await exec(["--", "sh", "-c", script, process.execPath, GET_TOKEN]);
    assert.equal(r.code, 0, r.stderr);
    const deadline = Date.now() + 20_000;
    while (!existsSync(out) || !readFileSync(out, "utf8").includes("rc=")) {
      assert.ok(Date.now() < deadline, "the background process did not finish");
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.match(readFileSync(out, "utf8"), /^ECONNREFUSED\s+rc=0/);
  });

  it("bad input: no command is a usage error (exit 2)", async () => {
    const r = await s.cli(["exec"], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ERROR: /);
    assert.ok(hasCommand("sh"));
  });
});

describe(
  "azkeep exec with the agent (agent-only mode: exec never unseals the store)",
  { timeout: 300_000 },
  () => {
    let s: SignedIn;
    let pids: (number | undefined)[] = [];
    before(async () => {
      s = await signedIn();
      const st = await startAgent(s);
      pids = [st.pid, st.vaultPid];
      const file = join(s.env.AZKEEP_CONFIG_DIR!, "config.json");
      const c = JSON.parse(readFileSync(file, "utf8")) as { store?: Record<string, unknown> };
      writeFileSync(file, JSON.stringify({ ...c, store: { ...c.store, mode: "agent-only" } }));
    });
    after(async () => {
      killAgent(...pids);
      await s?.close();
    });

    it("the child's ManagedIdentityCredential lists resource groups; tokens come from the agent", async () => {
      const env = { ...s.env, PATH: process.env.PATH ?? "/usr/bin:/bin" };
      // Without the agent, agent-only mode refuses exec outright: it may not open the store.
      const off = await s.cli(["exec", "--", "true"], { env: { ...env, AZKEEP_AGENT: "off" } });
      assert.equal(off.code, 1);
      assert.match(off.stderr, /agent-only mode/);
      const r = await s.cli(["exec", "--", process.execPath, NODE_CLIENT, "mi"], { env });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { names: string[]; token: string };
      assert.ok(out.names.includes("rg-dev-app"));
      assert.equal(jwtClaims(out.token).upn, "alice@contoso.onmicrosoft.com");
    });
  },
);
