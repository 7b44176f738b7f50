/** `azkeep agent policy remove NAME`: drops one rule, after the person allows it on the agent's pinentry. */
import { UsageError } from "../../../../core/errors.js";
import type { CommandRun } from "../../../command.js";
import { policyRequest } from "./common.js";

export const run: CommandRun<{ name: string }> = (flags, io) => {
  if (!flags.name.trim()) throw new UsageError("agent policy remove: the rule's name is empty");
  return policyRequest(io, { kind: "remove", name: flags.name });
};
