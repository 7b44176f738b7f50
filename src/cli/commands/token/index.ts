import type { RegisterGroup } from "../../command.js";

export const register: RegisterGroup = (program, lazy) => {
  const group = program.command("token").description("work with tokens locally");
  group
    .command("decode")
    .summary("decode a JWT locally: header, claims, expiry")
    .description(
      "decode a JWT locally (header, claims, expiry) — it is never sent anywhere.\n" +
        "Pipe the token in, so it stays out of the process list and shell history.",
    )
    .argument("[token]", "the token, or - (the default) to read it from stdin")
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  azkeep account get-access-token --query accessToken -o tsv | azkeep token decode\n" +
        "  azkeep token decode < token.txt\n",
    )
    .action(
      lazy(
        () => import("./decode.js"),
        (_opts, args) => ({ token: typeof args[0] === "string" ? args[0] : undefined }),
      ),
    );
};
