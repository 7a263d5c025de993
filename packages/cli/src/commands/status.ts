/** `agent-auth status [<provider>]`: the command line; what it shows is handlers/status.ts. */
import * as Handler from "../handlers/status.js"
import { json, provider, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"

export const status = C.make({
  name: "status",
  summary: "show each provider's credentials, where they come from and when they expire",
  description:
    "Shows, per provider, every credential found (environment variable, config.json, stored key, OAuth login), which one is used, the account, the expiry in local time, and the token masked. Reads local state only. Exits 1 when a provider shown has no usable credential.",
  args: { provider: C.optionalArg(provider) },
  flags: { json, verbose },
  examples: [
    { command: "agent-auth status", does: "every provider that has a credential" },
    { command: "agent-auth status openai --json", does: "OpenAI's credentials as one JSON object" }
  ],
  run: (args) => Handler.status({ provider: args.provider, json: args.json })
})
