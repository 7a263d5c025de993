/** `agent-auth status [<provider>]`: the command line; what it shows is handlers/status.ts. */
import { Args, Command } from "@effect/cli"
import { Option } from "effect"
import * as Handler from "../handlers/status.js"
import { json, verbose } from "../internal/args.js"

export const status = Command.make(
  "status",
  { provider: Args.text({ name: "provider" }).pipe(Args.optional), json, verbose },
  (args) => Handler.status({ provider: Option.getOrUndefined(args.provider), json: args.json })
).pipe(Command.withDescription("show every provider's credentials, where they come from and when they expire"))
