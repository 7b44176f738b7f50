/**
 * Issue 3, "no secret in the clear": a whole workflow that stores tokens — a user by device
 * code and one by password (stdin), a service principal by secret (stdin, then the
 * environment) and by certificate (a file), tokens for several resources, a refresh of a token
 * the emulator let expire, `rest`, the az shim, a logout — each command with `--debug`, the key
 * in a real gnome-keyring. Then the EXACT strings of every token the emulator issued and every
 * password, client secret and private key it was seeded with are searched for in: every file
 * of the config and runtime folders, every file created or changed under the temp folder
 * during the run, and all output (except the access token that get-access-token is asked to
 * print). The secrets never travel in argv: checked on the commands given and on samples of
 * every process's command line during the run.
 */
import assert from "node:assert/strict";
import { createPrivateKey, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_SEED, type Emulator, type Seed } from "../../src/emulator/index.js";
import { requireTool } from "../helpers/require-tool.js";
import { selfSignedPem } from "../migrate/helpers.js";
import { ALICE, CONTOSO, SP, emulator } from "../signin/emulator.js";
import {
  BIN,
  STACK_TRACE,
  changedFiles,
  filesUnder,
  freshHome,
  inGnomeKeyring,
  leaks,
  readPlaces,
  run,
  sampleCommandLines,
  tapIssuedTokens,
  tokenSecrets,
  type IssuedTokens,
  type Place,
  type Ran,
  type Secret,
} from "./helpers.js";

const BOB_UPN = "bob@fabrikam.onmicrosoft.com";
const JWT = /eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/g;

/** The default world with secrets no other test uses, so a hit in a shared temp folder is ours. */
function uniqueSeed(certPem: string) {
  const r = () => randomBytes(12).toString("base64url");
  const passwords = { alice: `alice-${r()}`, bob: `bob-${r()}` };
  const spSecret = `sp~${r()}.${r()}`;
  const seed: Seed = structuredClone(DEFAULT_SEED);
  for (const u of seed.users) u.password = u.upn === ALICE.upn ? passwords.alice : passwords.bob;
  const app = seed.apps.find((a) => a.clientId === SP.clientId)!;
  app.secrets = [{ value: spSecret }];
  app.certificates = [{ pem: certPem.slice(certPem.indexOf("-----BEGIN CERTIFICATE-----")) }];
  return { seed, passwords, spSecret };
}

/** A private key as the strings that would give it away: the PEM block's lines, its DER in base64 and its scalar. */
function privateKeySecrets(pem: string): Secret[] {
  const block = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/.exec(pem)![1]!;
  const lines = block.split("\n").filter((l) => l.length >= 32);
  const jwk = createPrivateKey(pem).export({ format: "jwk" });
  return [
    { label: "the private key (PEM body)", value: block.replace(/\s+/g, "") },
    ...lines.map((l, i) => ({ label: `the private key (PEM line ${i + 1})`, value: l })),
    { label: "the private key (d, base64url)", value: jwk.d! },
    { label: "the private key (d, hex)", value: Buffer.from(jwk.d!, "base64url").toString("hex") },
  ];
}

interface Step {
  argv: string[];
  r: Ran;
  /** get-access-token: its stdout is the access token it was asked for. */
  printsToken: boolean;
}

describe(
  "no secret in the clear after a workflow that stores tokens (e2e, gnome-keyring)",
  { timeout: 180_000 },
  () => {
    let emu: Emulator;
    let tap: IssuedTokens;
    let input: string;
    let certFile: string;
    let certPem: string;
    let u: ReturnType<typeof uniqueSeed>;
    before(async () => {
      tap = tapIssuedTokens();
      input = mkdtempSync(join(tmpdir(), "azkeep-e2e-input-"));
      certPem = await selfSignedPem("azkeep-e2e-at-rest");
      certFile = join(input, "sp.pem");
      writeFileSync(certFile, certPem, { mode: 0o600 });
      u = uniqueSeed(certPem);
      emu = await emulator({ https: true, seed: u.seed, lifetimes: { deviceCodeInterval: 1 } });
    });
    after(async () => {
      await emu?.close();
      tap?.[Symbol.dispose]();
      if (input) rmSync(input, { recursive: true, force: true });
    });

    it("tokens, secrets, passwords and the private key appear in no file, temp file, log or argv", async (t) => {
      if (!requireTool(t, "dbus-run-session", "apt-get install dbus")) return;
      if (!requireTool(t, "gnome-keyring-daemon", "apt-get install gnome-keyring")) return;
      const started = Date.now();
      const tmpBefore = filesUnder(tmpdir());
      using h = freshHome("azkeep-e2e-rest-", { AZKEEP_STORE_PROVIDER: "keyring" });
      const shimDir = join(BIN, "..", "..", "shim");
      const env = { ...emu.env, ...h.env, PATH: `${shimDir}:${h.env.PATH ?? "/usr/bin:/bin"}` };
      const argvSeen = sampleCommandLines();
      const steps: Step[] = [];
      const step = async (
        argv: string[],
        o: { input?: string; env?: Record<string, string>; printsToken?: boolean } = {},
      ) => {
        const full = argv[0] === "az" ? [...argv, "--debug"] : [process.execPath, BIN, ...argv, "--debug"];
        const r = await run(inGnomeKeyring(full), {
          env: { ...env, ...o.env },
          timeoutMs: 60_000,
          ...(o.input !== undefined ? { input: o.input } : {}),
        });
        assert.equal(r.code, 0, `${argv.join(" ")}: ${r.stderr}${r.noise}`);
        // Commands that touch the token store or the network log it (`account list` and `store status` need neither).
        if (argv[1] !== "list" && argv[1] !== "status")
          assert.match(r.stderr, /^DEBUG: /m, `${argv.join(" ")}: --debug logged something`);
        assert.doesNotMatch(r.stderr, STACK_TRACE);
        steps.push({ argv: full, r, printsToken: o.printsToken ?? false });
        return r;
      };
      const refreshGrants = () =>
        emu.control.countRequests({ endpoint: "token", grantType: "refresh_token" });

      try {
        // A user by device code (approved as if on the sign-in page).
        const login = step(["login", "--use-device-code"]);
        const dc = await emu.control.waitForDeviceCode({ timeoutMs: 60_000 });
        await emu.control.approveDeviceCode(dc.userCode, ALICE.upn, { mfa: false });
        await login;
        await step(["account", "get-access-token"], { printsToken: true });
        await step(["account", "get-access-token", "--resource-type", "ms-graph"], { printsToken: true });
        await step(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"], {
          printsToken: true,
        });
        // A refresh after the access token ran out: the emulator issues 2-minute tokens (inside
        // azkeep's 5-minute margin), so the next request must refresh it.
        await emu.control.setLifetimes({ accessToken: 120 });
        await step(["account", "get-access-token", "--resource", "https://vault.azure.net"], {
          printsToken: true,
        });
        const before = await refreshGrants();
        await step(["account", "get-access-token", "--resource", "https://vault.azure.net"], {
          printsToken: true,
        });
        assert.equal(await refreshGrants(), before + 1, "the expired token was refreshed");
        // The identity provider down during a refresh: the aging token is served, and the failure
        // is remembered for other processes in the runtime folder.
        await emu.control.injectFault({ endpoint: "token", type: "status", status: 503 });
        const aging = await step(["account", "get-access-token", "--resource", "https://vault.azure.net"], {
          printsToken: true,
        });
        assert.match(aging.stderr, /Serving the cached token/);
        await emu.control.clearFaults();
        await emu.control.setLifetimes({ accessToken: 3600 });
        await step([
          "rest",
          "--url",
          "/subscriptions/{subscriptionId}/resourcegroups?api-version=2022-09-01",
        ]);
        await step(["az", "account", "get-access-token", "-o", "json"], { printsToken: true });

        // A second user by password on stdin.
        await step(["login", "-u", BOB_UPN, "--password-stdin"], { input: u.passwords.bob });
        await step(["account", "get-access-token"], { printsToken: true });

        // The service principal: secret on stdin, secret in the environment, then a certificate file.
        const sp = ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO];
        await step([...sp, "--password-stdin"], { input: u.spSecret });
        await step(["account", "get-access-token", "--resource-type", "ms-graph"], { printsToken: true });
        await step(sp, { env: { AZKEEP_CLIENT_SECRET: u.spSecret } });
        await step(["account", "get-access-token"], { printsToken: true });
        await step([...sp, "--certificate", certFile]);
        await step(["account", "get-access-token", "--resource-type", "ms-graph"], { printsToken: true });
        await step([
          "rest",
          "--url",
          "/subscriptions/{subscriptionId}/resourcegroups?api-version=2022-09-01",
        ]);

        // One identity signs out; the rest stay.
        await step(["logout", "--username", BOB_UPN]);
        const list = await step(["account", "list", "--all"]);
        assert.ok(!list.stdout.includes(BOB_UPN) && list.stdout.includes(ALICE.upn), list.stdout);
        await step(["store", "status"]);
      } finally {
        argvSeen.stop();
      }

      const secrets: Secret[] = [
        ...tokenSecrets(tap),
        { label: "alice's password", value: u.passwords.alice },
        { label: "bob's password", value: u.passwords.bob },
        { label: "the client secret", value: u.spSecret },
        ...privateKeySecrets(certPem),
      ];
      // The search has something to find: tokens of each kind, and ones the CLI printed.
      assert.ok(tap.count("access token") >= 8, `${tap.count("access token")} access tokens`);
      assert.ok(tap.count("refresh token") >= 3, `${tap.count("refresh token")} refresh tokens`);
      assert.ok(tap.count("id token") >= 2, `${tap.count("id token")} id tokens`);
      const printed = steps.filter((s) => s.printsToken).flatMap((s) => s.r.stdout.match(JWT) ?? []);
      assert.ok(printed.length >= 10 && printed.every((p) => tap.all.get(p) === "access token"));

      // 1. The config folder and the runtime folder, every file.
      const configFiles = [...filesUnder(h.configDir).keys()];
      for (const f of ["tokens.sealed", "profile.json", "config.json"])
        assert.ok(configFiles.includes(join(h.configDir, f)), `${f} exists: ${configFiles.join(", ")}`);
      const runtimeFiles = [...filesUnder(h.runtimeDir).keys()];
      assert.ok(runtimeFiles.length > 0, "the runtime folder holds the failure memo");
      const atRest = readPlaces([...configFiles, ...runtimeFiles]);
      assert.deepEqual(leaks(secrets, atRest), [], "config and runtime folders");

      // 2. Every file created or changed under the temp folder during the run (this HOME is
      // there too: its keyring, D-Bus and gnome-keyring files), except the PEM file handed in.
      const tmpFiles = changedFiles(tmpBefore, filesUnder(tmpdir())).filter((f) => f !== certFile);
      assert.ok(
        tmpFiles.some((f) => f.startsWith(h.home)),
        "the scan sees this run's files",
      );
      assert.deepEqual(leaks(secrets, readPlaces(tmpFiles)), [], "temp folder");

      // 3. All output, --debug stderr included; get-access-token's stdout may hold only the access token it printed.
      const output: Place[] = [];
      for (const s of steps) {
        const name = s.argv.slice(s.argv[0] === "az" ? 0 : 2).join(" ");
        output.push({ label: `stderr of ${name}`, text: s.r.stderr + s.r.noise });
        const ownToken = s.printsToken ? new Set(s.r.stdout.match(JWT) ?? []) : new Set<string>();
        const others = secrets.filter(
          (x) => !ownToken.has(x.value) && ![...ownToken].some((tk) => tk.endsWith(x.value)),
        );
        assert.deepEqual(leaks(others, [{ label: `stdout of ${name}`, text: s.r.stdout }]), []);
      }
      assert.deepEqual(leaks(secrets, output), [], "stderr");

      // 4. argv: never a secret, in the commands given nor in any command line seen meanwhile.
      const argv: Place[] = [
        ...steps.map((s) => ({ label: `argv of ${s.argv.join(" ")}`, text: s.argv.join("\0") })),
        ...argvSeen.seen().map((c) => ({ label: `a process's command line (${c.slice(0, 80)})`, text: c })),
      ];
      assert.ok(argvSeen.seen().length > 0, "the sampler saw processes");
      assert.deepEqual(leaks(secrets, argv), [], "argv");

      t.diagnostic(
        `${steps.length} commands, ${tap.all.size} tokens issued, ${secrets.length} strings searched in ` +
          `${atRest.length} config/runtime files, ${tmpFiles.length} temp files, ${argvSeen.seen().length} command lines; ` +
          `${Date.now() - started} ms`,
      );
    });
  },
);
