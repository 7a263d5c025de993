/** `agent-auth token <provider>`: the command line; what it prints is handlers/token.ts. */
import { Args, Command } from "@effect/cli"
import * as Handler from "../handlers/token.js"
import { account, json, optionValue, verbose } from "../internal/args.js"

export const token = Command.make(
  "token",
  { provider: Args.text({ name: "provider" }), account, json, verbose },
  (args) => Handler.token({ provider: args.provider, account: optionValue(args.account), json: args.json })
).pipe(Command.withDescription("print a valid access token (refreshed if due) or API key on stdout"))
