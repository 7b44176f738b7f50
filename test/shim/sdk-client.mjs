// A stock Azure SDK program, run as a child process by test/shim/azure-sdk.test.ts: lists the
// resource groups of a subscription with @azure/arm-resources and the credential named in
// argv[2] (`cli`: AzureCliCredential, `default`: DefaultAzureCredential, `azkeep`: azkeep's own
// AzkeepCredential). It knows nothing about azkeep or the emulator: HTTPS_PROXY,
// NODE_EXTRA_CA_CERTS and PATH (with the az shim first) are all it gets.
import { ResourceManagementClient } from "@azure/arm-resources";
import { AzureCliCredential, DefaultAzureCredential } from "@azure/identity";

const [kind, subscriptionId, libPath] = process.argv.slice(2);
let credential;
if (kind === "cli") credential = new AzureCliCredential();
else if (kind === "default") credential = new DefaultAzureCredential();
else credential = new (await import(libPath)).AzkeepCredential();

const client = new ResourceManagementClient(credential, subscriptionId);
const names = [];
for await (const group of client.resourceGroups.list()) names.push(group.name);
const token = await credential.getToken("https://management.azure.com/.default");
process.stdout.write(
  JSON.stringify({ names, expiresOnTimestamp: token.expiresOnTimestamp, token: token.token }) + "\n",
);
