/**
 * Keeps OAuth logins fresh. `fresh` returns a login whose access token is valid for
 * more than `minValidity` (default: AuthConfig.refreshSkew, 5 minutes), refreshing when not.
 *
 * Boundary convention: a token is fresh while `expiresAt − now > minValidity`; at exactly
 * `expiresAt − minValidity` it is refreshed. With `minValidity` 0 this makes a token
 * expired at its `expiresAt` instant, as JWT `exp` does ("on or after"). A token without
 * `expiresAt` counts as fresh (nothing says otherwise; a 401 then forces a refresh).
 *
 * One refresh per key at a time in the process (concurrent callers await the same one;
 * when its leader is interrupted, they retry themselves); across processes the refresh
 * runs inside `TokenStore.modify`, re-reads, and skips when another process already
 * refreshed. Transient failures retry on a bounded schedule and keep the old credential;
 * refusals (`invalid_grant`, `refresh_token_reused|expired|invalidated`, `invalid_token`,
 * 401) become `ReauthRequired`. Never deletes a credential.
 */
import { HttpClient } from "@effect/platform"
import { Clock, Context, DateTime, Duration, Effect, Layer, Option, Redacted, Schedule } from "effect"
import { AuthConfig } from "./AuthConfig.js"
import type { CredentialKey } from "./Domain.js"
import { keyString, OAuthCredential } from "./Domain.js"
import type { AuthError } from "./Errors.js"
import { ReauthRequired, TokenEndpointError } from "./Errors.js"
import { loginCommand, notLoggedIn } from "./internal/credentialHeaders.js"
import * as SingleFlight from "./internal/singleFlight.js"
import { logUrl, requestTokens, toTokenSet } from "./internal/tokenEndpoint.js"
import type { ProviderConfig } from "./Provider.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import { TokenStore } from "./TokenStore.js"

export interface FreshOptions {
  readonly minValidity?: Duration.DurationInput | undefined
  /** Refresh even if the token looks valid (after a 401 from the model API). */
  readonly force?: boolean | undefined
  /**
   * The login as the caller just read it from the store (the resolver does): used instead
   * of a second store read. A refresh still re-reads under the store's lock.
   */
  readonly current?: OAuthCredential | undefined
}

export interface RefresherShape {
  readonly fresh: (key: CredentialKey, options?: FreshOptions) => Effect.Effect<OAuthCredential, AuthError>
}

export class Refresher extends Context.Tag("@agent-auth/core/Refresher")<Refresher, RefresherShape>() {}

/** How transient token-endpoint failures are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number
  /** First backoff; doubles each retry, with jitter. */
  readonly base: Duration.DurationInput
  /** Cap on one backoff. */
  readonly maxDelay: Duration.DurationInput
  /** Cap on an honoured `Retry-After` (a server asking for an hour must not hang a model call). */
  readonly maxRetryAfter: Duration.DurationInput
}

export const defaultRetryPolicy: RetryPolicy = {
  retries: 4,
  base: Duration.millis(500),
  maxDelay: Duration.seconds(8),
  maxRetryAfter: Duration.seconds(60)
}

/** OAuth error codes meaning the refresh token will never work again. */
export const reauthErrors: ReadonlySet<string> = new Set([
  "invalid_grant",
  "refresh_token_reused",
  "refresh_token_expired",
  "refresh_token_invalidated",
  "invalid_token"
])

/** True while the access token has more than `minValidityMillis` left (see the boundary convention above). */
export const isFresh = (login: OAuthCredential, nowMillis: number, minValidityMillis: number): boolean => {
  const exp = login.tokens.expiresAt
  return exp === undefined || exp.epochMillis - nowMillis > minValidityMillis
}

/** Worth another try: the network, a server error, or rate limiting. */
export const isTransient = (e: AuthError): boolean =>
  e._tag === "NetworkError" || (e._tag === "TokenEndpointError" && (e.status >= 500 || e.status === 429))

/** A refusal of the refresh token (never retried: a new login is the only fix). */
export const isRefusal = (e: TokenEndpointError): boolean =>
  e.status === 401 || (e.error !== undefined && e.status >= 400 && e.status < 500 && reauthErrors.has(e.error))

/** Bounded exponential backoff with jitter, never shorter than a `Retry-After` (capped). */
export const retrySchedule = (policy: RetryPolicy): Schedule.Schedule<unknown, AuthError> => {
  const maxDelay = Duration.decode(policy.maxDelay)
  const maxRetryAfter = Duration.decode(policy.maxRetryAfter)
  return Schedule.exponential(policy.base).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((_, d) => Duration.min(d, maxDelay)),
    Schedule.intersect(Schedule.recurs(policy.retries)),
    // The output becomes the failure just seen, so its Retry-After can stretch the delay.
    Schedule.passthrough,
    Schedule.modifyDelay((e: unknown, d) =>
      e instanceof TokenEndpointError && e.retryAfter !== undefined
        ? Duration.max(d, Duration.min(Duration.seconds(e.retryAfter), maxRetryAfter))
        : d
    )
  )
}

const sameTokens = (a: OAuthCredential, b: OAuthCredential): boolean => {
  if (a === b) return true
  const ra = a.tokens.refreshToken
  const rb = b.tokens.refreshToken
  return Redacted.value(a.tokens.accessToken) === Redacted.value(b.tokens.accessToken) &&
    (ra === undefined ? rb === undefined : rb !== undefined && Redacted.value(ra) === Redacted.value(rb))
}

export interface MakeOptions {
  readonly retry?: Partial<RetryPolicy> | undefined
}

export const make = (
  options: MakeOptions = {}
): Effect.Effect<RefresherShape, never, TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const registry = yield* ProviderRegistry
    const config = yield* AuthConfig
    const http = yield* HttpClient.HttpClient
    const schedule = retrySchedule({ ...defaultRetryPolicy, ...options.retry })
    const skewMillis = Duration.toMillis(config.refreshSkew)
    const flights = SingleFlight.make<OAuthCredential, AuthError>()

    const fail = (provider: string) => Effect.flatMap(registry.get(provider), (p) => Effect.fail(notLoggedIn(p)))

    const refreshGrant = (provider: ProviderConfig, login: OAuthCredential) =>
      Effect.gen(function*() {
        const refreshToken = login.tokens.refreshToken
        const command = loginCommand(provider)
        const again = command === undefined ? {} : { command }
        if (refreshToken === undefined) {
          return yield* new ReauthRequired({ provider: provider.id, account: login.account, reason: "no refresh token", ...again })
        }
        const metadata = yield* registry.metadata(provider)
        yield* Effect.logDebug("refreshing").pipe(
          Effect.annotateLogs({ provider: provider.id, account: login.account, endpoint: logUrl(metadata.token_endpoint), format: provider.refreshFormat })
        )
        const response = yield* requestTokens(
          provider,
          metadata.token_endpoint,
          { grant_type: "refresh_token", refresh_token: refreshToken },
          provider.refreshFormat,
          config.httpTimeout
        ).pipe(
          Effect.provideService(HttpClient.HttpClient, http),
          Effect.mapError((e) =>
            e._tag === "TokenEndpointError" && isRefusal(e)
              ? new ReauthRequired({ provider: provider.id, account: login.account, reason: e.error ?? `HTTP ${e.status}`, ...again })
              : e
          ),
          Effect.tapError((e) =>
            e._tag === "ReauthRequired"
              ? Effect.logDebug("refresh refused: a new sign-in is needed").pipe(
                Effect.annotateLogs({ provider: provider.id, account: login.account, rule: "refusal", reason: e.reason })
              )
              : Effect.void
          )
        )
        const now = yield* DateTime.now
        return new OAuthCredential({
          provider: login.provider,
          account: login.account,
          tokens: toTokenSet(response, now, login.tokens),
          claims: login.claims,
          obtainedAt: login.obtainedAt,
          refreshedAt: now
        })
      })

    /** One attempt, under the store's lock: skip when the stored tokens changed and are fresh (another process refreshed). */
    const attempt = (provider: ProviderConfig, key: CredentialKey, observed: OAuthCredential, minMillis: number) =>
      store.modify(key, (current) =>
        Effect.gen(function*() {
          if (Option.isNone(current) || current.value._tag !== "OAuthCredential") {
            return yield* Effect.fail(notLoggedIn(provider))
          }
          const login = current.value
          if (!sameTokens(login, observed) && isFresh(login, yield* Clock.currentTimeMillis, minMillis)) {
            yield* Effect.logDebug("another process refreshed already; using its tokens").pipe(
              Effect.annotateLogs({ provider: provider.id, account: key.account, rule: "already_refreshed" })
            )
            return current
          }
          return Option.some<OAuthCredential>(yield* refreshGrant(provider, login))
        })).pipe(
          Effect.flatMap((next) =>
            Option.isSome(next) && next.value._tag === "OAuthCredential"
              ? Effect.succeed(next.value)
              : Effect.fail(notLoggedIn(provider))
          )
        )

    const refresh = (key: CredentialKey, observed: OAuthCredential, minMillis: number) =>
      Effect.flatMap(registry.get(key.provider), (provider) =>
        attempt(provider, key, observed, minMillis).pipe(
          Effect.tapError((e) =>
            isTransient(e)
              ? Effect.logDebug("refresh failed transiently; retrying within the bounded schedule").pipe(
                Effect.annotateLogs({ provider: provider.id, account: key.account, error: e._tag })
              )
              : Effect.void
          ),
          Effect.retry({ schedule, while: isTransient })
        ))

    const fresh = (key: CredentialKey, options: FreshOptions = {}): Effect.Effect<OAuthCredential, AuthError> => {
      const minMillis = options.minValidity === undefined ? skewMillis : Duration.toMillis(Duration.decode(options.minValidity))
      const force = options.force === true
      // The hot path is one store read (none when the caller just read it) and one clock read.
      const decide = (login: OAuthCredential): Effect.Effect<OAuthCredential, AuthError> =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          !force && isFresh(login, now, minMillis)
            ? Effect.succeed(login)
            : Effect.zipRight(
              Effect.logDebug("refresh due").pipe(
                Effect.annotateLogs({
                  provider: key.provider,
                  account: key.account,
                  rule: force ? "forced" : "expiry",
                  expires_in_s: login.tokens.expiresAt === undefined
                    ? "unknown"
                    : Math.round((login.tokens.expiresAt.epochMillis - now) / 1000),
                  min_validity_s: Math.round(minMillis / 1000)
                })
              ),
              flights.run(
                keyString(key),
                // Forced: tokens that changed while we waited are someone's fresh refresh; any unexpired ones do.
                refresh(key, login, force ? 0 : minMillis),
                go
              )
            ))
      const go: Effect.Effect<OAuthCredential, AuthError> = Effect.flatMap(store.get(key), (stored) =>
        Option.isSome(stored) && stored.value._tag === "OAuthCredential" ? decide(stored.value) : fail(key.provider))
      const current = options.current
      return current !== undefined && current.provider === key.provider && current.account === key.account
        ? decide(current)
        : go
    }

    return Refresher.of({ fresh })
  })

export const layer: Layer.Layer<
  Refresher,
  never,
  TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient
> = Layer.effect(Refresher, make())

/** The refresher with another retry policy (tests, runtimes with their own budget). */
export const layerWith = (
  options: MakeOptions
): Layer.Layer<Refresher, never, TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient> =>
  Layer.effect(Refresher, make(options))
