/** `agent-auth refresh <provider>`: refresh the OAuth login now (the default account's, or `--account`'s). */
import { Args, Command } from "@effect/cli"
import { NoRefreshToken, ProviderRegistry, Refresher } from "@agent-auth/core"
import { Clock, DateTime, Effect } from "effect"
import { chosenLogin } from "../internal/accounts.js"
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
      const login = yield* chosenLogin(p, optionValue(args.account))
      // Not "can no longer be used": without a refresh token the login still works until it expires.
      const exp0 = login.tokens.expiresAt
      if (login.tokens.refreshToken === undefined && login.refusal === undefined &&
        (exp0 === undefined || DateTime.toEpochMillis(exp0) > (yield* Clock.currentTimeMillis))) {
        return yield* new NoRefreshToken({
          provider: p.id,
          account: login.account,
          ...(exp0 === undefined ? {} : { validUntil: DateTime.formatIso(exp0) })
        })
      }
      const fresh = yield* refresher.fresh({ provider: p.id, account: login.account }, { force: true })
      const exp = fresh.tokens.expiresAt
      if (args.json) {
        yield* event({ event: "refreshed", provider: p.id, account: fresh.account, expires_at: exp === undefined ? null : DateTime.formatIso(exp) })
      }
      yield* say(`Refreshed ${p.displayName} (${fresh.claims.email ?? fresh.account}).` + (exp === undefined ? "" : ` The new token expires ${yield* expiry(exp)}.`))
    })
).pipe(Command.withDescription("refresh the login's access token now"))
