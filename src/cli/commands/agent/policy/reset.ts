/**
 * `azkeep agent policy reset`: back to the defaults (no rules), after the person allows it on
 * the agent's pinentry. Also the way back from a policy.json the agent refuses (edited, or an
 * older copy put back).
 */
import type { CommandRun } from "../../../command.js";
import { policyRequest } from "./common.js";

export const run: CommandRun<Record<string, never>> = (_flags, io) => policyRequest(io, { kind: "reset" });
