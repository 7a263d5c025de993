/**
 * Refreshing the logins of many principals at once (a hosted service whose users' tokens
 * expire together, or a job that keeps them warm): each principal's login through the
 * core `Refresher` over that principal's store, at most `concurrency` at a time (default
 * 16). Each refresh holds one database connection while it holds its row's lock, and
 * waits for the pool when all are taken: the wave never opens more connections than the
 * pool has (`AGENT_AUTH_DATABASE_POOL`), however large it is.
 */
import { type AuthConfig, type AuthError, type ProviderRegistry, Refresher, TokenStore } from "@agent-auth/core"
import type { Domain } from "@agent-auth/core"
import type { HttpClient } from "@effect/platform"
import { type Duration, Effect, Either } from "effect"
import { SqlTokenStores } from "./SqlTokenStore.js"

export const defaultConcurrency = 16

export interface Options {
  /** Refreshes running at once; default 16. */
  readonly concurrency?: number | undefined
  /** Refresh a login with less than this left (default: the refresher's rule, `AuthConfig.refreshSkew`). */
  readonly minValidity?: Duration.DurationInput | undefined
}

export interface Outcome {
  readonly principal: string
  /** The login as it is now (refreshed, or still fresh), or why not. */
  readonly result: Either.Either<Domain.OAuthCredential, AuthError>
}

/** Makes sure the login `key` of every principal is fresh; one outcome per principal, in order. */
export const refresh = (
  principals: Iterable<string>,
  key: Domain.CredentialKey,
  options: Options = {}
): Effect.Effect<
  ReadonlyArray<Outcome>,
  never,
  SqlTokenStores | ProviderRegistry.ProviderRegistry | AuthConfig.AuthConfig | HttpClient.HttpClient
> =>
  Effect.flatMap(SqlTokenStores, (stores) =>
    Effect.forEach(
      principals,
      (principal) =>
        Effect.gen(function*() {
          const store = yield* stores.forPrincipal(principal)
          const refresher = yield* Effect.provideService(Refresher.make(), TokenStore.TokenStore, store)
          return yield* refresher.fresh(key, { minValidity: options.minValidity })
        }).pipe(Effect.either, Effect.map((result) => ({ principal, result }))),
      { concurrency: options.concurrency ?? defaultConcurrency }
    ))
