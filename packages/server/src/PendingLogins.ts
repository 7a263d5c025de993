/**
 * Logins that were started and not yet completed, shared by every replica of a hosted
 * service: the login route saves one, the callback route takes it back by its `state`,
 * whichever replica the browser comes back to. Modelled on `@effect/platform`'s
 * KeyValueStore: an interface, a Tag, `make*` constructors and named layers, all passing
 * one suite (packages/server/test/PendingLoginsSuite.ts).
 *
 * Layers: `layerMemory` (one process) and `layerSql` (any `@effect/sql` client, secrets
 * encrypted) in this module.
 */
import type { PkceFlow, StoreError, TokenStoreError } from "@agent-auth/core"
import { SignInRefused } from "@agent-auth/core"
import type { SecretBox } from "@agent-auth/sql"
import type { SqlClient } from "@effect/sql"
import { Clock, Context, Duration, Effect, Layer, Ref } from "effect"
import * as SqlPendingLogins from "./internal/sqlPendingLogins.js"

/** A started login: what `PkceFlow.complete` needs, whose it is, and until when it may complete. */
export interface PendingLogin {
  readonly login: PkceFlow.PendingLogin
  /** The principal (end user) that started it; only the same principal may complete it. */
  readonly principal: string
  /** Epoch milliseconds after which the callback is refused. */
  readonly expiresAt: number
}

export interface PendingLoginsShape {
  /** Where pending logins are kept, for people: "memory", "sqlite file:…", "postgres host:port/db". */
  readonly location: string
  readonly save: (pending: PendingLogin) => Effect.Effect<void, StoreError>
  /**
   * Removes the login of `state` and returns it. A state is used once: of two callbacks
   * with the same state (on any replicas), one gets the login and the other `unknown`.
   * An expired login is removed too, and refused as `expired`. `StoreKeyRejected` when
   * the row was sealed under a key this replica was not given.
   */
  readonly take: (state: string) => Effect.Effect<PendingLogin, SignInRefused | TokenStoreError>
}

export class PendingLogins extends Context.Tag("@agent-auth/server/PendingLogins")<PendingLogins, PendingLoginsShape>() {}

/** How long a started login may take before its callback is refused. */
export const defaultTimeToLive: Duration.Duration = Duration.minutes(10)

/** The refusal for a login found at `now`: expired, or none. */
export const checkExpiry = (pending: PendingLogin, now: number): Effect.Effect<PendingLogin, SignInRefused> =>
  now >= pending.expiresAt ? Effect.fail(new SignInRefused({ reason: "expired" })) : Effect.succeed(pending)

/** In memory: one process only (tests, a single-replica service). */
export const makeMemory: Effect.Effect<PendingLoginsShape> = Effect.gen(function*() {
  const ref = yield* Ref.make(new Map<string, PendingLogin>())
  return PendingLogins.of({
    location: "memory",
    save: (pending) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.update(ref, (m) => {
          // Abandoned logins would otherwise stay forever.
          const next = new Map([...m].filter(([, p]) => p.expiresAt > now))
          return next.set(pending.login.state, pending)
        })),
    take: (state) =>
      Ref.modify(ref, (m) => {
        const found = m.get(state)
        if (found === undefined) return [undefined, m]
        const next = new Map(m)
        next.delete(state)
        return [found, next]
      }).pipe(
        Effect.flatMap((found) =>
          found === undefined
            ? Effect.fail(new SignInRefused({ reason: "unknown" }))
            : Effect.flatMap(Clock.currentTimeMillis, (now) => checkExpiry(found, now))
        )
      )
  })
})

export const layerMemory: Layer.Layer<PendingLogins> = Layer.effect(PendingLogins, makeMemory)

/**
 * In SQL, shared by every replica on one database: the `SqlClient` and `SecretBox` of
 * `@agent-auth/sql` (`SqlStoreConfig.layerClient`, `SecretBox.layerConfig`). Its table
 * (`agent_auth_pending_logins`) is created by its own migrations on first use.
 */
export const makeSql = (options: { readonly location: string }): Effect.Effect<
  PendingLoginsShape,
  StoreError,
  SqlClient.SqlClient | SecretBox.SecretBox
> => Effect.map(SqlPendingLogins.make(options), PendingLogins.of)

export const layerSql = (options: { readonly location: string }): Layer.Layer<
  PendingLogins,
  StoreError,
  SqlClient.SqlClient | SecretBox.SecretBox
> => Layer.effect(PendingLogins, makeSql(options))
