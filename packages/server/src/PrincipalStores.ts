/**
 * The `TokenStore` of each principal (end user) of a hosted service. Every route asks for
 * the store of the principal the host application named for the request, so one user's
 * request never reads or writes another's rows.
 *
 * Layers: `layerMemory`, and `layerSql` over `@agent-auth/sql`'s `SqlTokenStores`
 * (rows keyed by principal, encrypted at rest).
 */
import type { ConfigInvalid, TokenStoreError } from "@agent-auth/core"
import { TokenStore } from "@agent-auth/core"
import { SqlTokenStore } from "@agent-auth/sql"
import { Context, Effect, Layer, SynchronizedRef } from "effect"

export interface PrincipalStoresShape {
  /** Where the stores are, for people: "memory", "postgres 127.0.0.1:5432/db". */
  readonly location: string
  /** `ConfigInvalid` for a principal no store accepts (empty, over 256 characters, control characters). */
  readonly forPrincipal: (principal: string) => Effect.Effect<TokenStore.TokenStoreShape, TokenStoreError | ConfigInvalid>
}

export class PrincipalStores extends Context.Tag("@agent-auth/server/PrincipalStores")<PrincipalStores, PrincipalStoresShape>() {}

/** One memory store per principal, made on first use. */
export const makeMemory: Effect.Effect<PrincipalStoresShape> = Effect.gen(function*() {
  const stores = yield* SynchronizedRef.make(new Map<string, TokenStore.TokenStoreShape>())
  return PrincipalStores.of({
    location: "memory",
    forPrincipal: (principal) =>
      SynchronizedRef.modifyEffect(stores, (m) => {
        const found = m.get(principal)
        return found !== undefined
          ? Effect.succeed([found, m] as const)
          : Effect.map(TokenStore.makeMemory, (store) => [store, new Map(m).set(principal, store)] as const)
      })
  })
})

export const layerMemory: Layer.Layer<PrincipalStores> = Layer.effect(PrincipalStores, makeMemory)

/** The SQL token stores of `@agent-auth/sql`, one per principal over one database. */
export const layerSql: Layer.Layer<PrincipalStores, never, SqlTokenStore.SqlTokenStores> = Layer.effect(
  PrincipalStores,
  Effect.map(SqlTokenStore.SqlTokenStores, (stores) =>
    PrincipalStores.of({ location: stores.location, forPrincipal: stores.forPrincipal }))
)
