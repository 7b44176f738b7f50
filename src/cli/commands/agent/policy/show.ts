/** `azkeep agent policy show`: the release policy in force, as the agent verified it (no prompt). */
import type { CommandRun } from "../../../command.js";
import { policyRequest } from "./common.js";

export const run: CommandRun<Record<string, never>> = (_flags, io) => policyRequest(io, { kind: "show" });
