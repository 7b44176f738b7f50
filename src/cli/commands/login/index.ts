import { Option } from "commander";
import type { RegisterGroup } from "../../command.js";

export const register: RegisterGroup = (program, lazy) => {
  program
    .command("login")
    .description(
      "sign in to Microsoft Entra ID (or any OpenID provider with --authority), as `az login` does.\n" +
        "Default: a browser sign-in, falling back to a device code when no browser can be opened.",
    )
    .option("-u, --username <name>", "user name, or the app (client) id with --service-principal")
    .option(
      "-p, --password <secret>",
      "password or client secret (discouraged: other users can see it in the process list; use --password-stdin)",
    )
    .option("--password-stdin", "read the password or client secret from standard input")
    .option("-t, --tenant <tenant>", "tenant id (GUID) or domain, e.g. contoso.onmicrosoft.com")
    .option(
      "--allow-no-subscriptions",
      "also sign in to tenants without subscriptions (tenant-level accounts)",
    )
    .option("--service-principal", "sign in as a service principal (-u APP_ID --tenant T)")
    .option(
      "--certificate <pem-file>",
      "service principal certificate: a PEM file with the private key and certificate",
    )
    .option("--use-cert-sn-issuer", "send the certificate chain (x5c) for subject-name/issuer authentication")
    .option(
      "--federated-token <token>",
      "service principal federated token (visible in the process list; prefer the file)",
    )
    .option(
      "--federated-token-file <file>",
      "file with a federated token, re-read at every token request (default: AZURE_FEDERATED_TOKEN_FILE)",
    )
    .option("-i, --identity", "sign in with the machine's managed identity (IMDS, App Service, Cloud Shell)")
    .option("--client-id <id>", "managed identity client id, or the client id for --authority")
    .option("--object-id <id>", "managed identity object (principal) id")
    .option("--resource-id <id>", "managed identity Azure resource id")
    .option("--use-device-code", "sign in with a device code (for machines without a browser)")
    .option("--scope <scopes...>", "scopes to consent to, e.g. https://management.core.windows.net//.default")
    .option(
      "--claims-challenge <claims>",
      "a claims challenge to satisfy (base64 or JSON), from a resource or azkeep's hint",
    )
    .option("--port <n>", "fixed port for the browser redirect listener (for SSH tunnels)")
    .option(
      "--no-browser",
      "print the sign-in address instead of opening a browser; paste the redirect address back",
    )
    .option("--timeout <seconds>", "how long to wait for the browser sign-in", "300")
    .option(
      "--authority <issuer-url>",
      "sign in to this OpenID provider instead of Entra ID (needs --client-id)",
    )
    .addOption(new Option("--identity-port <port>").hideHelp())
    .addHelpText(
      "after",
      "\nSeveral identities can be signed in side by side: a sign-in replaces only the same identity's\n" +
        "accounts in the active cloud (see docs/signin.md).\n" +
        "Examples:\n" +
        "  azkeep login\n" +
        "  azkeep login --use-device-code --tenant contoso.onmicrosoft.com\n" +
        "  azkeep login --no-browser --port 8400\n" +
        '  printf %s "$SECRET" | azkeep login --service-principal -u APP_ID --tenant TENANT --password-stdin\n' +
        "  azkeep login --service-principal -u APP_ID --tenant TENANT --federated-token-file $AZURE_FEDERATED_TOKEN_FILE\n" +
        "  azkeep login --identity --client-id CLIENT_ID\n" +
        "  azkeep login --authority https://issuer.example.com --client-id my-cli\n",
    )
    .action(lazy(() => import("./login.js")));
};
