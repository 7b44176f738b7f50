/**
 * The `az` shim as its callers run it (reference §5): the exact argv and shell forms of
 * @azure/identity for JS (execFile, and the older `exec` string), azure-identity for Python
 * (the real one from Debian's python3-azure, and the current argv form), Terraform's
 * go-azure-sdk (`-o=json`, `--scope`), Pulumi and Go azidentity (`/bin/sh -c "…"` with quoted
 * subscription names) — each parsed the way that caller parses it, in non-UTC time zones too.
 */
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { hasCommand } from "../helpers/require-tool.js";
import {
  CONTOSO,
  DEV_SUB,
  DEV_SUB_NAME,
  FABRIKAM,
  SHIM_DIR,
  signedIn,
  type SignedIn,
} from "../tokens/signed-in.js";
import { jwtClaims } from "../helpers/jwt.js";

const ARM_V1 = "https://management.core.windows.net/";
const LOCAL = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.000000$/;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  file: string,
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env, cwd: opts.cwd ?? "/bin", timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Parses `expiresOn` as a naive local time in `tz`, in a child process (as Go/Python/JS do). */
function parseLocal(expiresOn: string, tz: string): number {
  const r = spawnSync(
    process.execPath,
    ["-e", `process.stdout.write(String(new Date(${JSON.stringify(expiresOn)}).getTime() / 1000))`],
    {
      env: { ...process.env, TZ: tz },
      encoding: "utf8",
    },
  );
  return Number(r.stdout);
}

describe("the az shim, as its callers run it (e2e, emulator)", { timeout: 300_000 }, () => {
  let s: SignedIn;
  let env: Record<string, string>;
  before(async () => {
    s = await signedIn();
    env = { ...s.env, PATH: `${SHIM_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}` };
    const warm = await run("az", ["account", "get-access-token"], env);
    assert.equal(warm.code, 0, warm.stderr);
  });
  after(async () => {
    await s?.close();
  });

  function tokenJson(r: Run): Record<string, unknown> {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "", "nothing on stderr on success (JS reads any `az login` there as signed out)");
    return JSON.parse(r.stdout) as Record<string, unknown>; // stdout is JSON only
  }

  it("@azure/identity 4.14: execFile with --resource and --tenant", async () => {
    const r = await run(
      "az",
      ["account", "get-access-token", "--output", "json", "--resource", ARM_V1, "--tenant", FABRIKAM],
      env,
    );
    const v = tokenJson(r);
    // JS: expires_on first, as an integer number of seconds
    const expiresOnTimestamp = Number.parseInt(String(v.expires_on), 10) * 1000;
    assert.ok(!Number.isNaN(expiresOnTimestamp) && expiresOnTimestamp > Date.now() + 300_000);
    assert.equal(jwtClaims(String(v.accessToken)).tid, FABRIKAM);
    assert.ok(!("subscription" in v));
  });

  it("@azure/identity 4.14: execFile with --subscription carrying literal quotes", async () => {
    const r = await run(
      "az",
      [
        "account",
        "get-access-token",
        "--output",
        "json",
        "--resource",
        ARM_V1,
        "--subscription",
        `"${DEV_SUB_NAME}"`,
      ],
      env,
    );
    assert.equal(tokenJson(r).subscription, DEV_SUB);
  });

  it("@azure/identity 4.13: child_process.exec of the joined string (a shell), cwd /bin", async () => {
    const command = [
      "az",
      "account",
      "get-access-token",
      "--output",
      "json",
      "--resource",
      ARM_V1,
      "--subscription",
      `"${DEV_SUB_NAME}"`,
    ].join(" ");
    const r = await new Promise<Run>((resolve) => {
      execFile("/bin/sh", ["-c", command], { env, cwd: "/bin" }, (e, stdout, stderr) =>
        resolve({ code: e ? 1 : 0, stdout, stderr }),
      );
    });
    const v = tokenJson(r);
    assert.equal(v.subscription, DEV_SUB);
    // JS's fallback when expires_on is missing: new Date(expiresOn) in local time
    assert.equal(new Date(String(v.expiresOn)).getTime() / 1000, v.expires_on);
  });

  it("azure-identity for Python, current: argv with stdin /dev/null, cwd /bin, AZURE_CORE_NO_COLOR", async () => {
    const r = await new Promise<Run>((resolve) => {
      const child = spawn(
        "az",
        ["account", "get-access-token", "--output", "json", "--resource", "https://management.azure.com"],
        {
          env: { ...env, AZURE_CORE_NO_COLOR: "true" },
          cwd: "/bin",
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
    const v = tokenJson(r);
    assert.equal(jwtClaims(String(v.accessToken)).aud, "https://management.azure.com");
  });

  for (const tz of ["Asia/Tokyo", "America/New_York", "Europe/Berlin"]) {
    it(`the real azure-identity (Python, /bin/sh -c, expiresOn only) in TZ=${tz}`, async (t: TestContext) => {
      const py = "/usr/bin/python3";
      const probe = spawnSync(py, ["-c", "import azure.identity"], { stdio: "ignore" });
      if (probe.status !== 0) {
        if (process.env.CI === "true") assert.fail("python3-azure is missing: apt-get install -y azure-cli");
        t.skip("azure-identity for Python is missing: install it with `apt-get install -y azure-cli`");
        return;
      }
      const script =
        "from azure.identity import AzureCliCredential\n" +
        "t = AzureCliCredential().get_token('https://management.azure.com/.default')\n" +
        "print(t.expires_on)\nprint(t.token)\n";
      const r = await run(py, ["-c", script], { ...env, TZ: tz });
      assert.equal(r.code, 0, r.stderr);
      const [expiresOn, token] = r.stdout.trim().split("\n");
      const direct = tokenJson(
        await run("az", ["account", "get-access-token", "--resource", "https://management.azure.com"], env),
      );
      assert.equal(token, direct.accessToken);
      // Python parsed the naive local expiresOn in its TZ: it must land on the same instant.
      assert.equal(Number(expiresOn), direct.expires_on);
    });
  }

  it("Terraform (go-azure-sdk): az version, account show, account list with -o=json", async () => {
    const version = tokenJsonless(await run("az", ["version", "-o=json"], env));
    const v = String(version["azure-cli"]);
    const [maj, min] = v.split(".").map(Number);
    assert.ok(maj === 2 && (min ?? 0) >= 54, `azure-cli ${v}: ≥ 2.54 (expires_on) and < 3.0.0`);
    const show = tokenJsonless(await run("az", ["account", "show", "-o=json"], env));
    assert.equal(show.id, DEV_SUB);
    assert.equal(show.tenantId, CONTOSO);
    assert.equal(show.environmentName, "AzureCloud");
    assert.ok(!("cloudName" in show));
    assert.deepEqual(show.user, { name: "alice@contoso.onmicrosoft.com", type: "user" });
    assert.equal(show.isDefault, true);
    const list = tokenJsonless(await run("az", ["account", "list", "-o=json"], env)) as unknown as Record<
      string,
      unknown
    >[];
    assert.ok(Array.isArray(list));
    assert.ok(list.some((x) => x.id === DEV_SUB));
    assert.ok(list.every((x) => x.state === "Enabled" && x.cloudName === "AzureCloud"));
  });

  for (const tz of ["UTC", "Asia/Tokyo", "America/Los_Angeles"]) {
    it(`Terraform: get-access-token --scope …/.default [--subscription] -o=json; expiresOn parsed in TZ=${tz}`, async () => {
      for (const extra of [[], ["--subscription", DEV_SUB], ["--tenant", FABRIKAM]]) {
        const r = await run(
          "az",
          [
            "account",
            "get-access-token",
            "--scope",
            "https://management.azure.com/.default",
            ...extra,
            "-o=json",
          ],
          { ...env, TZ: tz },
        );
        const v = tokenJson(r);
        assert.match(String(v.expiresOn), LOCAL);
        assert.equal(v.tokenType, "Bearer");
        // go-azure-sdk ignores expires_on and parses expiresOn with time.ParseInLocation(…, time.Local)
        assert.equal(parseLocal(String(v.expiresOn), tz), v.expires_on);
        assert.equal(jwtClaims(String(v.accessToken)).aud, "https://management.azure.com");
      }
    });
  }

  it("Pulumi: /bin/sh -c 'az account show -o json  --subscription \"<name>\"'", async () => {
    const r = await run("/bin/sh", ["-c", `az account show -o json  --subscription "${DEV_SUB_NAME}"`], env);
    const v = tokenJsonless(r);
    assert.equal(v.environmentName, "AzureCloud");
    assert.equal(v.id, DEV_SUB);
    assert.equal(v.name, DEV_SUB_NAME);
    assert.equal(v.tenantId, CONTOSO);
  });

  it("Go azidentity / Pulumi: /bin/sh -c with --resource and a quoted subscription name, TZ=Asia/Kolkata", async () => {
    const r = await run(
      "/bin/sh",
      ["-c", `az account get-access-token -o json --resource ${ARM_V1} --subscription "${DEV_SUB_NAME}"`],
      { ...env, TZ: "Asia/Kolkata" },
    );
    const v = tokenJson(r);
    assert.equal(v.subscription, DEV_SUB);
    assert.ok(Number.isInteger(v.expires_on)); // Go unmarshals into int64: must be a JSON integer
    assert.match(r.stdout, /"expires_on": \d+,/);
    assert.equal(parseLocal(String(v.expiresOn), "Asia/Kolkata"), v.expires_on);
  });

  it("-o tsv and --query work as with az", async () => {
    const r = await run("az", ["account", "get-access-token", "--query", "accessToken", "-o", "tsv"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^eyJ[\w.-]+\n$/);
  });

  it("not signed in: exit 1 and stderr that callers read as 'not logged in'", async () => {
    const r = await run("az", ["account", "get-access-token", "--output", "json", "--resource", ARM_V1], {
      ...env,
      AZKEEP_CONFIG_DIR: join(s.home, "nobody"),
    });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    // JS: /az login/ and not /az login --scope/ → CredentialUnavailable; Python: "az login" without "AADSTS"
    assert.match(r.stderr, /az login/);
    assert.doesNotMatch(r.stderr, /az login --scope|AADSTS/);
    assert.match(r.stderr, /azkeep login/);
  });

  it("a bad argument: exit 2, as az's parser", async () => {
    const r = await run("az", ["account", "get-access-token", "--bogus"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ERROR: unrecognized arguments: --bogus/);
  });

  describe("other commands go to the real az further down PATH", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "azkeep-fake-az-"));
      writeFileSync(
        join(dir, "az"),
        '#!/bin/sh\nprintf "real az:"\nfor a in "$@"; do printf " [%s]" "$a"; done\necho\nexit 7\n',
      );
      chmodSync(join(dir, "az"), 0o755);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("arguments and exit code pass through unchanged; the shim's own folder is skipped", async () => {
      const r = await run("az", ["group", "list", "--query", "[].name", "-o", "a b"], {
        ...env,
        PATH: `${SHIM_DIR}:${SHIM_DIR}:${dir}:/usr/bin:/bin`,
      });
      assert.equal(r.code, 7);
      assert.equal(r.stdout, "real az: [group] [list] [--query] [[].name] [-o] [a b]\n");
    });

    it("with no real az: one clear error", async () => {
      // only node (for the shim's shebang) and the shim on PATH
      const nodeOnly = mkdtempSync(join(tmpdir(), "azkeep-node-only-"));
      symlinkSync(process.execPath, join(nodeOnly, "node"));
      const r = await run(join(SHIM_DIR, "az"), ["group", "list"], {
        ...env,
        PATH: `${SHIM_DIR}:${nodeOnly}`,
      });
      rmSync(nodeOnly, { recursive: true, force: true });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^ERROR: 'az group list' is not answered by azkeep's az shim.*no Azure CLI was found further down PATH/,
      );
    });

    it("the Debian Azure CLI answers what the shim does not", async (t: TestContext) => {
      if (!hasCommand("/usr/bin/az")) {
        // CI installs azure-cli: there, a missing /usr/bin/az is a failure, not a skip.
        if (process.env.CI === "true") assert.fail("/usr/bin/az is missing: apt-get install -y azure-cli");
        t.skip("the Azure CLI is missing: apt-get install -y azure-cli");
        return;
      }
      const r = await run("az", ["cloud", "show", "--query", "name", "-o", "tsv"], {
        ...env,
        AZURE_CONFIG_DIR: join(s.home, "az-config"),
        PATH: `${SHIM_DIR}:/usr/bin:/bin`,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "AzureCloud");
    });
  });
});

function tokenJsonless(r: Run): Record<string, unknown> {
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  return JSON.parse(r.stdout) as Record<string, unknown>;
}
