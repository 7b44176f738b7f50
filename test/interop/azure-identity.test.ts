/**
 * The Azure SDK for JavaScript, unmodified, against the emulator: @azure/identity's
 * ClientSecretCredential, ClientCertificateCredential, DeviceCodeCredential and
 * ManagedIdentityCredential, and @azure/arm-resources listing resource groups.
 *
 * In-process, the SDK points at the emulator's HTTPS URL (authorityHost + ARM endpoint) and
 * trusts its CA through an https.Agent. In child processes, it runs with stock settings
 * (login.microsoftonline.com, management.azure.com, 169.254.169.254) and reaches the emulator
 * through HTTPS_PROXY / HTTP_PROXY with NODE_EXTRA_CA_CERTS, or through the managed identity
 * environment variables identity 4.13 honours (via msal-node): AZURE_POD_IDENTITY_AUTHORITY_HOST
 * for IMDS, IDENTITY_ENDPOINT + IDENTITY_HEADER for App Service.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ResourceManagementClient } from "@azure/arm-resources";
import { ClientCertificateCredential, ClientSecretCredential, DeviceCodeCredential } from "@azure/identity";
import {
  DEFAULT_SP_CERT_PEM,
  DEFAULT_SP_KEY_PEM,
  startEmulator,
  type Emulator,
} from "../../src/emulator/index.js";
import { baseEnv } from "../helpers/az.js";
import { jwtClaims } from "../helpers/jwt.js";
import { AZ_CLI_CLIENT_ID } from "../helpers/seed.js";
import { FIXTURES, SEEDED, TSX_IMPORT, start } from "./helpers.js";

const ARM_SCOPE = "https://management.azure.com/.default";

interface TokenInfo {
  aud: string;
  tid: string;
  appid?: string;
  oid?: string;
  expiresOnTimestamp: number;
}

describe("@azure/identity and @azure/arm-resources against the emulator", { timeout: 300_000 }, () => {
  let root: string;
  let emu: Emulator;
  let agent: https.Agent;
  let certPath: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "azkeep-interop-sdk-"));
    emu = await startEmulator({ dataDir: join(root, "emulator") });
    await emu.control.setLifetimes({ deviceCodeInterval: 1 });
    agent = new https.Agent({ ca: readFileSync(emu.caCertPath!, "utf8") });
    certPath = join(root, "sp.pem");
    writeFileSync(certPath, `${DEFAULT_SP_KEY_PEM.trim()}\n${DEFAULT_SP_CERT_PEM.trim()}\n`, { mode: 0o600 });
  });
  after(async () => {
    agent?.destroy();
    await emu?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** Options that point a credential at the emulator's HTTPS listener. */
  function authority() {
    return { authorityHost: emu.urls.https!, disableInstanceDiscovery: true, agent };
  }

  async function listGroups(credential: ClientSecretCredential | DeviceCodeCredential): Promise<string[]> {
    const client = new ResourceManagementClient(credential, SEEDED.subs.dev, {
      endpoint: emu.urls.https!,
      credentialScopes: [ARM_SCOPE],
      agent,
    });
    const names: string[] = [];
    for await (const g of client.resourceGroups.list()) names.push(g.name ?? "");
    return names.sort();
  }

  /** Runs a scenario of fixtures/sdk-client.ts in a fresh Node process with `env`. */
  async function child<T>(scenario: string, env: Record<string, string>): Promise<T> {
    const r = await start(
      process.execPath,
      [...TSX_IMPORT, join(FIXTURES, "sdk-client.ts"), scenario],
      { ...baseEnv(root), ...env },
      120_000,
    ).done;
    assert.equal(r.code, 0, `scenario ${scenario} failed:\n${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  it("ClientSecretCredential gets an ARM token; ResourceManagementClient lists resource groups with it", async () => {
    const credential = new ClientSecretCredential(
      SEEDED.contoso,
      SEEDED.sp.clientId,
      SEEDED.sp.secret,
      authority(),
    );
    const token = await credential.getToken(ARM_SCOPE);
    const c = jwtClaims(token.token);
    assert.equal(c.appid, SEEDED.sp.clientId);
    assert.equal(c.tid, SEEDED.contoso);
    assert.match(String(c.aud), /^https:\/\/management\.azure\.com\/?$/);
    assert.ok(token.expiresOnTimestamp > Date.now() + 30 * 60_000);
    assert.deepEqual(await listGroups(credential), ["rg-dev-app", "rg-identity"]);
  });

  it("ClientSecretCredential with a wrong secret fails with Entra's AADSTS7000215", async () => {
    const credential = new ClientSecretCredential(
      SEEDED.contoso,
      SEEDED.sp.clientId,
      "wrong-secret",
      authority(),
    );
    await assert.rejects(credential.getToken(ARM_SCOPE), (err: Error) => {
      assert.match(err.message, /AADSTS7000215/);
      assert.doesNotMatch(err.message, /wrong-secret/);
      return true;
    });
  });

  it("ClientCertificateCredential signs in with the seeded certificate (x5t#S256 and x5c)", async () => {
    for (const sendCertificateChain of [false, true]) {
      const credential = new ClientCertificateCredential(
        SEEDED.contoso,
        SEEDED.sp.clientId,
        { certificatePath: certPath },
        { ...authority(), sendCertificateChain },
      );
      const c = jwtClaims((await credential.getToken("https://graph.microsoft.com/.default")).token);
      assert.equal(c.appid, SEEDED.sp.clientId);
      assert.match(String(c.aud), /^https:\/\/graph\.microsoft\.com\/?$/);
      assert.deepEqual(c.roles, ["Application.Read.All"]);
    }
  });

  it("DeviceCodeCredential: the user approves (control API) while the SDK polls; then ARM works", async () => {
    let approvalError: unknown;
    let prompt = "";
    const credential = new DeviceCodeCredential({
      ...authority(),
      tenantId: SEEDED.contoso,
      clientId: AZ_CLI_CLIENT_ID,
      userPromptCallback: (info) => {
        prompt = info.message;
        emu.control
          .approveDeviceCode(info.userCode, SEEDED.alice.upn)
          .catch((err: unknown) => (approvalError = err));
      },
    });
    const token = await credential.getToken(ARM_SCOPE);
    assert.equal(approvalError, undefined);
    assert.match(prompt, /enter the code/);
    const c = jwtClaims(token.token);
    assert.equal(c.upn, SEEDED.alice.upn);
    assert.equal(c.tid, SEEDED.contoso);
    assert.deepEqual(await listGroups(credential), ["rg-dev-app", "rg-identity"]);
  });

  it("stock authority and ARM endpoint through HTTPS_PROXY + NODE_EXTRA_CA_CERTS (secret and certificate)", async () => {
    await emu.control.clearRequests();
    const out = await child<{
      secret: TokenInfo;
      secretGroups: string[];
      certificate: TokenInfo;
      certificateGroups: string[];
      certificateSendChain: TokenInfo;
    }>("proxy", {
      HTTPS_PROXY: emu.urls.proxy!,
      NODE_EXTRA_CA_CERTS: emu.caCertPath!,
      AZURE_TENANT_ID: SEEDED.contoso,
      AZURE_CLIENT_ID: SEEDED.sp.clientId,
      AZURE_CLIENT_SECRET: SEEDED.sp.secret,
      AZURE_CLIENT_CERTIFICATE_PATH: certPath,
      SUBSCRIPTION_ID: SEEDED.subs.dev,
    });
    for (const t of [out.secret, out.certificate, out.certificateSendChain]) {
      assert.equal(t.appid, SEEDED.sp.clientId);
      assert.equal(t.tid, SEEDED.contoso);
    }
    assert.deepEqual(out.secretGroups, ["rg-dev-app", "rg-identity"]);
    assert.deepEqual(out.certificateGroups, ["rg-dev-app", "rg-identity"]);
    const { requests } = await emu.control.requests();
    const hosts = new Set(requests.map((r) => r.host));
    assert.deepEqual([...hosts].sort(), ["login.microsoftonline.com", "management.azure.com"]);
  });

  it("ManagedIdentityCredential at the default IMDS address, through HTTP_PROXY", async () => {
    await emu.control.clearRequests();
    const out = await child<{ system: TokenInfo; groups: string[] }>("imdsProxy", {
      HTTP_PROXY: emu.urls.proxy!,
      HTTPS_PROXY: emu.urls.proxy!,
      NODE_EXTRA_CA_CERTS: emu.caCertPath!,
      SUBSCRIPTION_ID: SEEDED.subs.dev,
    });
    assert.equal(out.system.appid, SEEDED.miSystem);
    assert.equal(out.system.tid, SEEDED.contoso);
    assert.deepEqual(out.groups, ["rg-dev-app", "rg-identity"]);
    const imds = await emu.control.requests({ endpoint: "imds" });
    assert.ok(
      imds.requests.length > 0 &&
        imds.requests.every((r) => r.host === "169.254.169.254" && r.status === 200),
    );
  });

  it("ManagedIdentityCredential via AZURE_POD_IDENTITY_AUTHORITY_HOST (IMDS), system and user-assigned", async () => {
    await emu.control.clearRequests();
    const out = await child<{ system: TokenInfo; user: TokenInfo }>("imdsHost", {
      AZURE_POD_IDENTITY_AUTHORITY_HOST: emu.urls.http,
      USER_MI_CLIENT_ID: SEEDED.miUser,
    });
    assert.equal(out.system.appid, SEEDED.miSystem);
    assert.equal(out.user.appid, SEEDED.miUser);
    assert.match(out.user.aud, /^https:\/\/management\.azure\.com\/?$/);
    assert.equal(await emu.control.countRequests({ endpoint: "imds" }), 2);
    assert.equal(await emu.control.countRequests({ endpoint: "appservice" }), 0);
  });

  it("ManagedIdentityCredential via IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service)", async () => {
    await emu.control.clearRequests();
    const out = await child<{ system: TokenInfo; user: TokenInfo }>("appService", {
      ...emu.managedIdentityEnv,
      AZURE_POD_IDENTITY_AUTHORITY_HOST: "",
      USER_MI_CLIENT_ID: SEEDED.miUser,
    });
    assert.equal(out.system.appid, SEEDED.miSystem);
    assert.equal(out.user.appid, SEEDED.miUser);
    assert.equal(await emu.control.countRequests({ endpoint: "appservice" }), 2);
    assert.equal(await emu.control.countRequests({ endpoint: "imds" }), 0);
  });
});
