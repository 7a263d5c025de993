/** `agent-auth token <provider>`: the command line; what it prints is handlers/token.ts. */
import * as Handler from "../handlers/token.js"
import { account, json, provider, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"

export const token = C.make({
  name: "token",
  summary: "print a valid access token (refreshed if due) or API key on stdout",
  description:
    "Prints the credential agent-auth would use for the provider — an environment variable, an API key, or an OAuth access token refreshed when it is due — on stdout and nothing else, for scripts and agent runtimes. Exits 1 with the command that fixes it when there is none.",
  args: { provider },
  flags: { account, json, verbose },
  examples: [
    { command: "agent-auth token openai", does: "the token for OpenAI, e.g. in `curl -H \"Authorization: Bearer $(agent-auth token openai)\"`" },
    { command: "agent-auth token demo --json", does: "the whole credential as JSON: headers, base URL, expiry, source" }
  ],
  run: (args) => Handler.token({ provider: args.provider, account: args.account, json: args.json })
})
