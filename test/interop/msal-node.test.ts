/**
 * Microsoft's MSAL for Node (@azure/msal-node), unmodified, against the emulator: device code
 * sign-in as the Azure CLI's public client, then a silent token for a second resource from
 * the refresh token. Through the CONNECT proxy with the real login.microsoftonline.com
 * authority, and directly against the emulator's HTTPS listener as a known authority.
 *
 * MSAL's network client is its documented extension point; the one here is plain fetch
 * (undici) with the emulator's CA trusted and, for the first case, the proxy.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  PublicClientApplication,
  type INetworkModule,
  type NetworkRequestOptions,
  type NetworkResponse,
} from "@azure/msal-node";
import { Agent, ProxyAgent, fetch, type Dispatcher } from "undici";
import { startEmulator, type Emulator } from "../../src/emulator/index.js";
import { jwtClaims } from "../helpers/jwt.js";
import { AZ_CLI_CLIENT_ID } from "../helpers/seed.js";
import { SEEDED } from "./helpers.js";

const ARM_SCOPE = "https://management.core.windows.net//.default";
const GRAPH_SCOPE = "https://graph.microsoft.com/.default";

/** An MSAL network module on undici's fetch with a chosen dispatcher (proxy, trusted CA). */
function networkClient(dispatcher: Dispatcher): INetworkModule {
  async function send<T>(
    method: string,
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    const res = await fetch(url, {
      method,
      dispatcher,
      ...(options?.headers ? { headers: options.headers } : {}),
      ...(options?.body !== undefined ? { body: options.body } : {}),
    });
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    return { status: res.status, headers, body: (await res.json()) as T };
  }
  return {
    sendGetRequestAsync: (url, options) => send("GET", url, options),
    sendPostRequestAsync: (url, options) => send("POST", url, options),
  };
}

describe("@azure/msal-node against the emulator", { timeout: 180_000 }, () => {
  let root: string;
  let emu: Emulator;
  let ca: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "azkeep-interop-msal-"));
    emu = await startEmulator({ dataDir: join(root, "emulator") });
    await emu.control.setLifetimes({ deviceCodeInterval: 1 });
    ca = readFileSync(emu.caCertPath!, "utf8");
  });
  after(async () => {
    await emu?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** Device code sign-in approved through the control API, then a silent token for Graph. */
  async function deviceCodeThenSilent(pca: PublicClientApplication, expectedHost: string): Promise<void> {
    await emu.control.clearRequests();
    let message = "";
    let approvalError: unknown;
    const result = await pca.acquireTokenByDeviceCode({
      scopes: [ARM_SCOPE],
      deviceCodeCallback: (r) => {
        message = r.message;
        // Approve as the person at the browser would, while MSAL polls.
        // (A failed approval leaves MSAL polling; the test's timeout then reports it.)
        emu.control
          .approveDeviceCode(r.userCode, SEEDED.alice.upn)
          .catch((err: unknown) => (approvalError = err));
      },
    });
    assert.equal(approvalError, undefined);
    assert.ok(result, "a device code result");
    assert.match(message, /enter the code \S+ to authenticate/);
    assert.equal(result.account?.username, SEEDED.alice.upn);
    assert.equal(result.tenantId, SEEDED.contoso);
    assert.equal(jwtClaims(result.accessToken).aud, "https://management.core.windows.net/");
    assert.equal(jwtClaims(result.idToken).aud, AZ_CLI_CLIENT_ID);

    await emu.control.clearRequests();
    const graph = await pca.acquireTokenSilent({ account: result.account, scopes: [GRAPH_SCOPE] });
    assert.equal(jwtClaims(graph.accessToken).aud, "https://graph.microsoft.com");
    assert.equal(jwtClaims(graph.accessToken).upn, SEEDED.alice.upn);
    const { requests } = await emu.control.requests({ endpoint: "token" });
    assert.deepEqual(
      requests.map((r) => [r.grantType, r.status, r.host]),
      [["refresh_token", 200, expectedHost]],
    );

    // The ARM token is still cached: no request at all.
    await emu.control.clearRequests();
    const again = await pca.acquireTokenSilent({ account: result.account, scopes: [ARM_SCOPE] });
    assert.equal(again.accessToken, result.accessToken);
    assert.equal(await emu.control.countRequests({ endpoint: "token" }), 0);
  }

  it("device code then silent refresh for Graph, through the proxy as login.microsoftonline.com", async () => {
    const dispatcher = new ProxyAgent({ uri: emu.urls.proxy!, requestTls: { ca } });
    try {
      const pca = new PublicClientApplication({
        auth: { clientId: AZ_CLI_CLIENT_ID, authority: "https://login.microsoftonline.com/organizations" },
        system: { networkClient: networkClient(dispatcher) },
      });
      await deviceCodeThenSilent(pca, "login.microsoftonline.com");
    } finally {
      await dispatcher.close();
    }
  });

  it("device code then silent refresh, with the emulator's HTTPS URL as a known authority", async () => {
    const dispatcher = new Agent({ connect: { ca } });
    const host = new URL(emu.urls.https!).host;
    try {
      const pca = new PublicClientApplication({
        auth: {
          clientId: AZ_CLI_CLIENT_ID,
          authority: `${emu.urls.https!}/${SEEDED.contoso}`,
          knownAuthorities: [host],
        },
        system: { networkClient: networkClient(dispatcher) },
      });
      await deviceCodeThenSilent(pca, host);
    } finally {
      await dispatcher.close();
    }
  });
});
