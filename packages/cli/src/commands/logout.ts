/**
 * `agent-auth logout <provider> | --all`: revoke at the provider where it can, delete locally,
 * say which happened. For a provider: the account `--account` names, else what `token` would
 * use (the default account's key and login); other accounts stay, and are named.
 */
import { OperationCancelled, ProviderRegistry, Revoker, TokenStore, UsageError } from "@agent-auth/core"
import type { NotLoggedIn, Provider } from "@agent-auth/core"
import type { NodeTokenStore } from "@agent-auth/node"
import { Effect } from "effect"
import { chosenStored, storedAccounts } from "../internal/accounts.js"
import { account, json, provider as providerArg, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"
import { confirm } from "../internal/menu.js"
import { event, say, stderrIsTty, stdinIsTty, yellow } from "../internal/output.js"

/**
 * `logout` of a login the file store could not read (kept in the file, skipped): removed
 * when it is the one the command names, with no revocation (its tokens cannot be read).
 */
const removeUnreadable = (store: TokenStore.TokenStoreShape, provider: string, account: string | undefined, notStored: NotLoggedIn) =>
  Effect.gen(function*() {
    const list = (store as Partial<NodeTokenStore.FileTokenStore>).unreadable
    const all = list === undefined ? [] : yield* list.pipe(Effect.orElseSucceed(() => []))
    const matching = all.filter((e) => e.provider === provider && e.account !== undefined && (account === undefined || e.account === account))
    if (matching.length !== 1) return yield* notStored
    const e = matching[0]!
    yield* store.remove({ provider, account: e.account! })
    yield* say(`Deleted the unreadable login ${provider} (${e.account}) from ${store.location}; it was not revoked (its tokens could not be read).`)
    return []
  })

export const logout = C.make({
  name: "logout",
  summary: "revoke and delete a stored login or key (or --all)",
  description:
    "Revokes the login at the provider where it has a revocation endpoint, deletes it from the store even when revocation fails, and says which happened. Environment variables and config.json keys are not touched (unset or edit them).",
  args: { provider: C.optionalArg(providerArg) },
  flags: { all: C.boolean("all", "log out of every provider and account"), account, json, verbose },
  examples: [
    { command: "agent-auth logout openai", does: "revoke and delete your ChatGPT login" },
    { command: "agent-auth logout --all", does: "every stored login and key" }
  ],
  run: (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const store = yield* TokenStore.TokenStore
      const revoker = yield* Revoker.Revoker
      let targets
      let provider: Provider.ProviderConfig | undefined
      // --all also removes logins the file store could not read (kept in the file, skipped).
      const unreadableList = (store as Partial<NodeTokenStore.FileTokenStore>).unreadable
      const unreadable = args.all && unreadableList !== undefined
        ? (yield* unreadableList).filter((e) => e.provider !== undefined && e.account !== undefined)
        : []
      if (args.all) {
        targets = yield* store.list()
        if (targets.length === 0 && unreadable.length === 0) yield* say("Nothing is stored; nothing to log out of.")
        // On a terminal, everything at once is asked first; scripts (no terminal) are not asked.
        if (targets.length > 0 && stdinIsTty() && stderrIsTty()) {
          const list = targets.map((c) => `${c.provider} (${c.account})`).join(", ")
          if (!(yield* confirm(`Log out of ${targets.length} login${targets.length === 1 ? "" : "s"}: ${list}? [y/N] `))) {
            return yield* new OperationCancelled({ what: "Logging out of everything" })
          }
        }
      } else if (args.provider !== undefined) {
        provider = yield* registry.get(args.provider)
        const p = provider
        targets = yield* chosenStored(p, args.account).pipe(
          Effect.catchTag("NotLoggedIn", (notStored) => removeUnreadable(store, p.id, args.account, notStored))
        )
      } else {
        return yield* new UsageError({ source: "command line", reason: "Name a provider (`agent-auth logout openai`), or pass --all to log out of everything." })
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
      for (const e of unreadable) {
        yield* store.remove({ provider: e.provider!, account: e.account! })
        yield* say(`Deleted the unreadable login ${e.provider} (${e.account}) from ${store.location}; it was not revoked (its tokens could not be read).`)
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
})
