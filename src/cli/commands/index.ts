/**
 * Registers every command group. Groups only declare flags here; each command's code is
 * imported lazily when it runs, so `get-access-token` does not pay for `login`.
 */
import type { Command } from "commander";
import type { Lazy, RegisterGroup } from "../command.js";
import { register as account } from "./account/index.js";
import { register as agent } from "./agent/index.js";
import { register as cloud } from "./cloud/index.js";
import { register as completion } from "./completion/index.js";
import { register as doctor } from "./doctor/index.js";
import { register as emulator } from "./emulator/index.js";
import { register as exec } from "./exec/index.js";
import { register as importGroup } from "./import/index.js";
import { register as login } from "./login/index.js";
import { register as logout } from "./logout/index.js";
import { register as rest } from "./rest/index.js";
import { register as shim } from "./shim/index.js";
import { register as store } from "./store/index.js";
import { register as token } from "./token/index.js";

const groups: RegisterGroup[] = [
  emulator,
  login,
  logout,
  account,
  cloud,
  rest,
  exec,
  shim,
  token,
  importGroup,
  doctor,
  store,
  agent,
  completion,
];

export function registerAll(program: Command, lazy: Lazy): void {
  for (const g of groups) g(program, lazy);
}
