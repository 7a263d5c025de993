/**
 * `agent-auth logout <provider> | --all`: revoke at the provider where it can, delete locally,
 * say which happened. For a provider: the account `--account` names, else what `token` would
 * use (the default account's key and login); other accounts stay, and are named.
 */
import { Args, Command, Options } from "@effect/cli"
import { ConfigInvalid, ProviderRegistry, Revoker, TokenStore } from "@agent-auth/core"
import type { Provider } from "@agent-auth/core"
import { Effect, Option } from "effect"
import { chosenStored, storedAccounts } from "../internal/accounts.js"
import { account, json, optionValue, verbose } from "../internal/args.js"
import { event, say, yellow } from "../internal/output.js"

export const logout = Command.make(
  "logout",
  {
    provider: Args.text({ name: "provider" }).pipe(Args.optional),
    all: Options.boolean("all").pipe(Options.withDescription("log out of every provider and account")),
    account,
    json,
    verbose
  },
  (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const store = yield* TokenStore.TokenStore
      const revoker = yield* Revoker.Revoker
      let targets
      let provider: Provider.ProviderConfig | undefined
      if (args.all) {
        targets = yield* store.list()
        if (targets.length === 0) yield* say("Nothing is stored; nothing to log out of.")
      } else if (Option.isSome(args.provider)) {
        provider = yield* registry.get(args.provider.value)
        targets = yield* chosenStored(provider, optionValue(args.account))
      } else {
        return yield* new ConfigInvalid({ source: "command line", field: "provider", reason: "name a provider, or pass --all" })
      }
      for (const c of targets) {
        const result = yield* revoker.logout({ provider: c.provider, account: c.account })
        const r = result.revocation
        const what = `${c.provider} (${c.account})`
        const text = r._tag === "Revoked"
          ? `Revoked the login for ${what} at the provider and deleted it from ${store.location}.`
          : r._tag === "NotSupported"
          ? `Deleted ${what} from ${store.location}; the provider has no revocation endpoint, so its tokens stay valid until they expire.`
          : r._tag === "NothingToRevoke"
          ? `Deleted ${what} from ${store.location}.`
          : yellow(`Deleted ${what} from ${store.location}, but revocation at the provider failed (${r.reason}); the tokens may stay valid until they expire.`)
        yield* say(text)
        if (args.json) {
          yield* event({
            event: "logged_out",
            provider: c.provider,
            account: c.account,
            revocation: r._tag === "Revoked" ? "revoked" : r._tag === "NotSupported" ? "not_supported" : r._tag === "NothingToRevoke" ? "nothing_to_revoke" : "failed",
            ...(r._tag === "Failed" ? { reason: r.reason } : {}),
            removed: result.removed
          })
        }
      }
      if (provider !== undefined) {
        const left = yield* storedAccounts(provider)
        if (left.length > 0) {
          yield* say(
            `Still stored for ${provider.id}: ${left.join(", ")} (\`agent-auth logout ${provider.id} --account NAME\` removes one, \`--all\` everything).`
          )
        }
      }
    })
).pipe(Command.withDescription("revoke and delete a login (or --all)"))
