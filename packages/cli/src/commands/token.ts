/** `agent-auth token <provider>`: the secret on stdout and nothing else; `--json` prints the whole Credential. */
import { Args, Command } from "@effect/cli"
import { CredentialResolver, Domain } from "@agent-auth/core"
import { Effect, Redacted } from "effect"
import { account, json, optionValue, verbose } from "../internal/args.js"
import { data } from "../internal/output.js"

export const token = Command.make(
  "token",
  { provider: Args.text({ name: "provider" }), account, json, verbose },
  (args) =>
    Effect.gen(function*() {
      const resolver = yield* CredentialResolver.CredentialResolver
      const credential = yield* resolver.resolve(args.provider, { account: optionValue(args.account) })
      // The one place a secret is printed: to the stdout of the person who asked for it.
      yield* data(args.json ? JSON.stringify(Domain.credentialToJson(credential)) : Redacted.value(Domain.credentialSecret(credential)))
    })
).pipe(Command.withDescription("print a valid access token (refreshed if due) or API key on stdout"))
