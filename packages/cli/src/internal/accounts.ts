/** Which stored account a command acts on when `--account` is not given. */
import { NotLoggedIn, TokenStore } from "@agent-auth/core"
import type { Domain, Provider } from "@agent-auth/core"
import { Effect } from "effect"

/** The accounts stored for a provider (all of them, or the one named). */
export const accountsOf = (p: Provider.ProviderConfig, account: string | undefined) =>
  Effect.gen(function*() {
    const store = yield* TokenStore.TokenStore
    const all = yield* store.list(p.id)
    const chosen = account === undefined ? all : all.filter((c) => c.account === account)
    if (chosen.length === 0) {
      return yield* new NotLoggedIn({ provider: p.id, envVars: p.apiKeyEnv, canLogin: p.canLogin })
    }
    return chosen as ReadonlyArray<Domain.StoredCredential>
  })
