import type { RegisterGroup } from "../../command.js";

export const register: RegisterGroup = (program, lazy) => {
  const group = program.command("emulator").description("a local Entra ID + Azure Resource Manager emulator");
  group
    .command("start")
    .description("start the emulator and print the URLs and environment a client needs (Ctrl-C stops it)")
    .option("--seed <file>", "tenants, users, apps and subscriptions as JSON (default: the built-in seed)")
    .option("--port <n>", "port of the plain HTTP endpoint (0 = any free port)", "0")
    .action(lazy(() => import("./start.js")));
};
