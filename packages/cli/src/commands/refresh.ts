/** `agent-auth refresh <provider>`: refresh the OAuth login now (the default account's, or `--account`'s). */
import { NoRefreshToken, Provider, ProviderRegistry, Refresher } from "@agent-auth/core"
import { Clock, DateTime, Effect } from "effect"
import { chosenLogin } from "../internal/accounts.js"
import { account, json, provider, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"
import { event, expiry, say } from "../internal/output.js"

export const refresh = C.make({
  name: "refresh",
  summary: "refresh an OAuth login's access token now",
  description:
    "Asks the provider for a new access token now, with the stored refresh token (commands refresh by themselves when a token is due; this is for checking that a login still works). API keys have nothing to refresh.",
  args: { provider },
  flags: { account, json, verbose },
  examples: [
    { command: "agent-auth refresh openai", does: "a new access token for your ChatGPT login" },
    { command: "agent-auth refresh acme --account work", does: "the login stored as account `work`" }
  ],
  run: (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const refresher = yield* Refresher.Refresher
      const p = yield* registry.get(args.provider)
      const login = yield* chosenLogin(p, args.account)
      // Not "can no longer be used": without a refresh token the login still works until it expires.
      const exp0 = login.tokens.expiresAt
      if (login.tokens.refreshToken === undefined && login.refusal === undefined &&
        (exp0 === undefined || DateTime.toEpochMillis(exp0) > (yield* Clock.currentTimeMillis))) {
        const command = Provider.loginCommand(p)
        return yield* new NoRefreshToken({
          provider: p.id,
          account: login.account,
          ...(exp0 === undefined ? {} : { validUntil: DateTime.formatIso(exp0) }),
          ...(command === undefined ? {} : { command })
        })
      }
      const fresh = yield* refresher.fresh({ provider: p.id, account: login.account }, { force: true })
      const exp = fresh.tokens.expiresAt
      if (args.json) {
        yield* event({ event: "refreshed", provider: p.id, account: fresh.account, expires_at: exp === undefined ? null : DateTime.formatIso(exp) })
      }
      yield* say(`Refreshed ${p.displayName} (${fresh.claims.email ?? fresh.account}).` + (exp === undefined ? "" : ` The new token expires ${yield* expiry(exp)}.`))
    })
})
