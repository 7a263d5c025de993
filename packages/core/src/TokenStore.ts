/**
 * Where logins and stored API keys live. Modelled on `@effect/platform`'s KeyValueStore:
 * an interface, a Tag, `make*` constructors and named layers; every layer passes the one
 * suite in `@agent-auth/testing` (`TokenStoreSuite`).
 *
 * Layers: `layerMemory` here; `layerFile` (default), `layerCodex` and `layerKeyring` in
 * `@agent-auth/node`.
 */
import { Context, Effect, Layer, Option, Ref } from "effect"
import type { CredentialKey, StoredCredential } from "./Domain.js"
import { keyString } from "./Domain.js"
import type { TokenStoreError } from "./Errors.js"

export interface TokenStoreShape {
  /** Where the credentials are, for people: a file path, "memory", "keyring". */
  readonly location: string
  /**
   * Where one credential lives, for a store that keeps them in more than one place (`auto`:
   * the keychain or the file); without it, `location`. Synchronous: what the store last saw.
   */
  readonly locationOf?: ((key: CredentialKey) => string) | undefined
  /**
   * Synchronous and free: a number that changes whenever what this store holds may have
   * changed as far as this instance knows: a write through it (`set`, `remove`, a `modify`
   * that wrote), or a read that found the content changed by someone else (another process,
   * another instance). Equal answers mean nothing was seen to change, so a caller may keep
   * using what it derived from an earlier read (`CredentialResolver` does). Changes made
   * elsewhere are seen only by the next read.
   */
  readonly revision: () => number
  readonly get: (key: CredentialKey) => Effect.Effect<Option.Option<StoredCredential>, TokenStoreError>
  readonly set: (credential: StoredCredential) => Effect.Effect<void, TokenStoreError>
  /** True when something was removed. */
  readonly remove: (key: CredentialKey) => Effect.Effect<boolean, TokenStoreError>
  /** Every stored credential, or those of one provider; ordered by provider, then account. */
  readonly list: (provider?: string) => Effect.Effect<ReadonlyArray<StoredCredential>, TokenStoreError>
  /**
   * Atomic read-modify-write of one key: `f` sees the current value (read afresh, under
   * the store's lock, so a value another process wrote is seen) and returns the new one;
   * `None` removes it, and returning the very object it was given writes nothing.
   * The lock is held while `f` runs (a token request may take that long), and other
   * writers of the same store wait for it.
   */
  readonly modify: <E, R>(
    key: CredentialKey,
    f: (current: Option.Option<StoredCredential>) => Effect.Effect<Option.Option<StoredCredential>, E, R>
  ) => Effect.Effect<Option.Option<StoredCredential>, E | TokenStoreError, R>
}

export class TokenStore extends Context.Tag("@agent-auth/core/TokenStore")<TokenStore, TokenStoreShape>() {}

/** Sort order of `list`. */
export const compareKeys = (a: CredentialKey, b: CredentialKey): number =>
  a.provider === b.provider ? (a.account < b.account ? -1 : a.account > b.account ? 1 : 0) : a.provider < b.provider ? -1 : 1

/** A store in memory, for tests and for runtimes that manage persistence themselves. */
export const makeMemory: Effect.Effect<TokenStoreShape> = Effect.gen(function*() {
  const ref = yield* Ref.make(new Map<string, StoredCredential>())
  // One writer at a time, so `modify` is atomic against every other write.
  const lock = yield* Effect.makeSemaphore(1)
  const write = <A, E, R>(effect: Effect.Effect<A, E, R>) => lock.withPermits(1)(effect)
  let revision = 0
  /** Every write replaces the map: the new map, and a new revision. */
  const replace = (next: Map<string, StoredCredential>) => {
    revision++
    return next
  }
  return {
    location: "memory",
    revision: () => revision,
    get: (key) => Effect.map(Ref.get(ref), (m) => Option.fromNullable(m.get(keyString(key)))),
    set: (credential) =>
      write(Ref.update(ref, (m) => replace(new Map(m).set(keyString(credential), credential)))),
    remove: (key) =>
      write(Ref.modify(ref, (m) => {
        if (!m.has(keyString(key))) return [false, m]
        const next = new Map(m)
        next.delete(keyString(key))
        return [true, replace(next)]
      })),
    list: (provider) =>
      Effect.map(Ref.get(ref), (m) =>
        [...m.values()]
          .filter((c) => provider === undefined || c.provider === provider)
          .sort(compareKeys)),
    modify: (key, f) =>
      write(Effect.gen(function*() {
        const current = Option.fromNullable((yield* Ref.get(ref)).get(keyString(key)))
        const next = yield* f(current)
        if (Option.isSome(next) && Option.isSome(current) && next.value === current.value) return next
        yield* Ref.update(ref, (m) => {
          const copy = new Map(m)
          if (Option.isSome(next)) copy.set(keyString(key), next.value)
          else copy.delete(keyString(key))
          return replace(copy)
        })
        return next
      }))
  }
})

export const layerMemory: Layer.Layer<TokenStore> = Layer.effect(TokenStore, makeMemory)
