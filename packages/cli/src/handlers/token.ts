/**
 * `agent-auth token <provider>`: the secret on stdout and nothing else; `--json` prints the
 * whole Credential. No command parsing here: commands/token.ts and the small bundle (fast.ts)
 * both run this.
 */
import { CredentialResolver, Domain } from "@agent-auth/core"
import { Effect, Redacted } from "effect"
import { data } from "../internal/output.js"

export interface TokenArgs {
  readonly provider: string
  readonly account: string | undefined
  readonly json: boolean
}

export const token = (args: TokenArgs) =>
  Effect.gen(function*() {
    const resolver = yield* CredentialResolver.CredentialResolver
    const credential = yield* resolver.resolve(args.provider, { account: args.account })
    // The one place a secret is printed: to the stdout of the person who asked for it.
    yield* data(args.json ? JSON.stringify(Domain.credentialToJson(credential)) : Redacted.value(Domain.credentialSecret(credential)))
  })
