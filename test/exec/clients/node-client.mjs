// A stock Azure SDK program run inside `azkeep exec` by test/exec/exec.test.ts. It knows
// nothing of azkeep: the environment exec gives it (IDENTITY_ENDPOINT, IDENTITY_HEADER,
// AZURE_TOKEN_CREDENTIALS, AZURE_SUBSCRIPTION_ID, the emulator's proxy and CA) is all it has.
//   mi | default: list resource groups with @azure/arm-resources (ManagedIdentityCredential /
//                 DefaultAzureCredential), then print the ARM token's expiry
//   msal:         @azure/msal-node's ManagedIdentityApplication gets an ARM token
//   graph:        DefaultAzureCredential asks for a Microsoft Graph token (refused under
//                 --allow-scope): prints the error and how long it took
import { ResourceManagementClient } from "@azure/arm-resources";
import { DefaultAzureCredential, ManagedIdentityCredential } from "@azure/identity";
import { ManagedIdentityApplication } from "@azure/msal-node";

const kind = process.argv[2];
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
if (kind === "msal") {
  const app = new ManagedIdentityApplication();
  const r = await app.acquireToken({ resource: "https://management.azure.com" });
  out({ source: app.getManagedIdentitySource(), expiresOn: r.expiresOn.getTime(), token: r.accessToken });
} else if (kind === "graph") {
  const started = Date.now();
  try {
    await new DefaultAzureCredential().getToken("https://graph.microsoft.com/.default");
    out({ ok: true });
  } catch (e) {
    out({ ok: false, ms: Date.now() - started, name: e.name, message: e.message });
  }
} else {
  const credential = kind === "mi" ? new ManagedIdentityCredential() : new DefaultAzureCredential();
  const client = new ResourceManagementClient(credential, process.env.AZURE_SUBSCRIPTION_ID);
  const names = [];
  for await (const group of client.resourceGroups.list()) names.push(group.name);
  const token = await credential.getToken("https://management.azure.com/.default");
  out({ names, expiresOnTimestamp: token.expiresOnTimestamp, token: token.token });
}
