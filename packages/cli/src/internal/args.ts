/** Flags and arguments shared by several commands (see command.ts). */
import * as C from "./command.js"

export const json = C.boolean("json", "print the result as JSON on stdout (errors too: {\"error\":{…}})")
export const verbose = C.boolean("verbose", "trace each protocol step on stderr, secrets redacted (or AGENT_AUTH_LOG=debug)")
export const account = C.value("account", {
  description: "which stored account, when a provider has several (`agent-auth status` lists them)",
  placeholder: "NAME",
  completion: C.complete.account,
  parse: C.accountName
})

export const provider = C.arg("provider", {
  description: "a provider id, as `agent-auth providers` lists it",
  completion: C.complete.provider,
  parse: C.providerName
})
