/** `agent-auth refresh <provider>`: refresh the OAuth login now. */
import { Args, Command } from "@effect/cli"
import { NotLoggedIn, ProviderRegistry, Refresher } from "@agent-auth/core"
import { DateTime, Effect } from "effect"
import { accountsOf } from "../internal/accounts.js"
import { account, json, optionValue, verbose } from "../internal/args.js"
import { event, expiry, say } from "../internal/output.js"

export const refresh = Command.make(
  "refresh",
  { provider: Args.text({ name: "provider" }), account, json, verbose },
  (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const refresher = yield* Refresher.Refresher
      const p = yield* registry.get(args.provider)
      const logins = (yield* accountsOf(p, optionValue(args.account))).filter((c) => c._tag === "OAuthCredential")
      const first = logins[0]
      if (first === undefined) return yield* new NotLoggedIn({ provider: p.id, envVars: p.apiKeyEnv, canLogin: p.canLogin })
      const fresh = yield* refresher.fresh({ provider: p.id, account: first.account }, { force: true })
      const exp = fresh.tokens.expiresAt
      if (args.json) {
        yield* event({ event: "refreshed", provider: p.id, account: fresh.account, expires_at: exp === undefined ? null : DateTime.formatIso(exp) })
      }
      yield* say(`Refreshed ${p.displayName} (${fresh.claims.email ?? fresh.account}).` + (exp === undefined ? "" : ` The new token expires ${yield* expiry(exp)}.`))
    })
).pipe(Command.withDescription("refresh the login's access token now"))
