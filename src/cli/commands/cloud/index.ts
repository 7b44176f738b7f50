import type { RegisterGroup } from "../../command.js";
import { ENDPOINT_FLAGS, SUFFIX_FLAGS } from "../../../core/clouds.js";

export const register: RegisterGroup = (program, lazy) => {
  const cloud = program
    .command("cloud")
    .description("the Azure clouds azkeep knows, and which one is active");
  cloud
    .command("list")
    .description("list the built-in and registered clouds")
    .action(lazy(() => import("./list.js")));
  cloud
    .command("show")
    .description("show a cloud's endpoints (default: the active cloud)")
    .option("-n, --name <name>", "cloud name")
    .action(lazy(() => import("./show.js")));
  cloud
    .command("set")
    .description("make a cloud the active one (its last default subscription comes back)")
    .requiredOption("-n, --name <name>", "cloud name")
    .action(lazy(() => import("./set.js")));
  const reg = cloud
    .command("register")
    .description(
      "register a custom cloud (Azure Stack, an ADFS authority, the azkeep emulator).\n" +
        "Missing Entra endpoints are read from <resource manager>/metadata/endpoints, as az does.",
    )
    .requiredOption("-n, --name <name>", "cloud name")
    .option("--profile <profile>", "ARM API profile (latest, 2020-09-01-hybrid, …)", "latest")
    .option(
      "--cloud-config <file>",
      "endpoints and suffixes as JSON ({endpoints: {…}, suffixes: {…}}); @file works too",
    );
  for (const flag of Object.keys(ENDPOINT_FLAGS)) reg.option(`--endpoint-${flag} <url>`, `endpoint ${flag}`);
  for (const flag of Object.keys(SUFFIX_FLAGS)) reg.option(`--suffix-${flag} <suffix>`, `suffix ${flag}`);
  reg.addHelpText(
    "after",
    "\nExample (the emulator's plain HTTP port):\n" +
      "  azkeep cloud register -n Emulator --endpoint-resource-manager http://127.0.0.1:PORT/ \\\n" +
      "    --endpoint-active-directory http://127.0.0.1:PORT \\\n" +
      "    --endpoint-active-directory-resource-id https://management.core.windows.net/\n" +
      "  azkeep cloud set -n Emulator\n",
  );
  reg.action(lazy(() => import("./register.js")));
  cloud
    .command("unregister")
    .description("remove a custom cloud (not a built-in one, not the active one)")
    .requiredOption("-n, --name <name>", "cloud name")
    .action(lazy(() => import("./unregister.js")));
};
