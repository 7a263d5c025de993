/**
 * Keeps OAuth logins fresh. `fresh` returns a login whose access token is valid for more
 * than its refresh margin, refreshing when not (shared/DESIGN.md, "Refresh rules").
 *
 * - Due: the margin is `minValidity` (default: AuthConfig.refreshSkew, 5 minutes), at most
 *   half the token's lifetime (`refreshMarginMillis`): a token is fresh while
 *   `expiresAt − now > margin`; at exactly `expiresAt − margin` it is refreshed (with a
 *   margin of 0, expired at its `expiresAt` instant, as JWT `exp` is). A token without
 *   `expiresAt` counts as fresh (nothing says otherwise; a 401 then forces a refresh).
 * - One refresh per login at a time in the process: callers that find it due meanwhile
 *   await the same one. Across processes it runs inside `TokenStore.modify`, re-reads, and
 *   uses the tokens another process stored meanwhile when their access token is unexpired
 *   (due or forced); only unchanged tokens are refreshed.
 * - Once sent, a refresh is finished and saved whatever happens to its callers: it runs in
 *   a fiber of its own, which a caller's interruption does not reach, and when the layer
 *   closes (the program ends) a refresh already sent is awaited, bounded by the token
 *   request's timeout. When the save fails, the new tokens are kept in memory (and used),
 *   the error is logged, and the save is retried; the old refresh token is never sent again.
 * - Transient failures retry on a bounded schedule and keep the old credential; refusals
 *   (`invalid_grant`, `refresh_token_reused|expired|invalidated`, `invalid_token`, 401)
 *   become `ReauthRequired` and are remembered on the stored login (`refusal`): later calls
 *   fail at once, with no request, until a new login replaces it. Never deletes a credential.
 */
import { HttpClient } from "@effect/platform"
import {
  Cause,
  Clock,
  Context,
  DateTime,
  Deferred,
  Duration,
  Effect,
  Fiber,
  FiberId,
  Layer,
  Option,
  Redacted,
  Schedule,
  type Scope
} from "effect"
import { AuthConfig } from "./AuthConfig.js"
import type { CredentialKey, StoredCredential } from "./Domain.js"
import { keyString, OAuthCredential, Refusal } from "./Domain.js"
import type { AuthError, TokenStoreError } from "./Errors.js"
import { ReauthRequired, TokenEndpointError } from "./Errors.js"
import { notLoggedIn } from "./internal/credentialHeaders.js"
import { logUrl, requestTokens } from "./internal/tokenEndpoint.js"
import * as SingleFlight from "./internal/singleFlight.js"
import { tokenSetOf } from "./internal/tokenSet.js"
import { loginCommand, type ProviderConfig } from "./Provider.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import { makeMemory, TokenStore } from "./TokenStore.js"

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
  /**
   * Tokens this process obtains itself from a credential that is not in the store (Google's
   * Application Default Credentials): held in memory, and obtained with `grant` when there
   * are none or they are due (or `force`), one grant per key at a time through the same
   * single flight as `fresh`, transient failures retried on the same schedule.
   */
  readonly held: (
    key: CredentialKey,
    grant: Effect.Effect<OAuthCredential, AuthError, HttpClient.HttpClient>,
    options?: Pick<FreshOptions, "minValidity" | "force">
  ) => Effect.Effect<OAuthCredential, AuthError>
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

/**
 * How long before its expiry a login is refreshed: `minValidity`, but at most half the
 * token's lifetime (from when it was obtained or last refreshed to its expiry). A provider
 * issuing 60-second or 5-minute tokens would otherwise be refreshed on every call.
 */
export const refreshMarginMillis = (login: OAuthCredential, minValidityMillis: number): number => {
  const exp = login.tokens.expiresAt
  if (exp === undefined) return minValidityMillis
  const lifetime = exp.epochMillis - (login.refreshedAt ?? login.obtainedAt).epochMillis
  return Math.max(0, Math.min(minValidityMillis, lifetime / 2))
}

/**
 * True while the access token has more than its refresh margin left (see the boundary
 * convention above, and `refreshMarginMillis`). With `minValidityMillis` 0: unexpired.
 */
export const isFresh = (login: OAuthCredential, nowMillis: number, minValidityMillis: number): boolean => {
  const exp = login.tokens.expiresAt
  return exp === undefined || exp.epochMillis - nowMillis > refreshMarginMillis(login, minValidityMillis)
}

/** The instant from which `isFresh` is false (Infinity without an expiry). */
export const refreshDueAt = (login: OAuthCredential, minValidityMillis: number): number => {
  const exp = login.tokens.expiresAt
  return exp === undefined ? Infinity : exp.epochMillis - refreshMarginMillis(login, minValidityMillis)
}

const storeErrors: ReadonlySet<string> = new Set(["StoreError", "StoreLocked", "StoreCorrupted", "StorePermissions"])
const isStoreError = (e: unknown): e is TokenStoreError =>
  typeof e === "object" && e !== null && storeErrors.has((e as { _tag?: string })._tag ?? "")

/** Worth another try: the network (not an answer that broke a rule), a server error, or rate limiting. */
export const isTransient = (e: AuthError): boolean =>
  (e._tag === "NetworkError" && e.final !== true) || (e._tag === "TokenEndpointError" && (e.status >= 500 || e.status === 429))

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
  /** How often a save that failed after a refresh is tried again (doubling from this, capped at 30 s); default 1 s. */
  readonly saveRetry?: Duration.DurationInput | undefined
}

/** A refresh's new tokens whose save failed: kept in memory (and used) until a save succeeds. */
interface Unsaved {
  /** The stored login the refresh replaced: while the store still holds it, ours is newer. */
  readonly replaced: OAuthCredential
  readonly login: OAuthCredential
}

/** One refresh of one login, shared by every caller that finds it due meanwhile. */
interface Flight {
  readonly result: Deferred.Deferred<OAuthCredential, AuthError>
  /** True from the moment a refresh request is sent until its answer is saved (or failed). */
  sent: boolean
  fiber: Fiber.RuntimeFiber<unknown, never> | undefined
}

/** What one attempt under the store's lock did, beyond what `modify` returns. */
type Outcome =
  | { readonly _tag: "New"; readonly replaced: OAuthCredential; readonly login: OAuthCredential }
  | { readonly _tag: "Refused"; readonly error: ReauthRequired }

export const make = (
  options: MakeOptions = {}
): Effect.Effect<
  RefresherShape,
  never,
  TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient | Scope.Scope
> =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const registry = yield* ProviderRegistry
    const config = yield* AuthConfig
    const http = yield* HttpClient.HttpClient
    const schedule = retrySchedule({ ...defaultRetryPolicy, ...options.retry })
    const saveDelay = Duration.decode(options.saveRetry ?? Duration.seconds(1))
    const saveSchedule = Schedule.exponential(saveDelay).pipe(
      Schedule.modifyDelay((_, d) => Duration.min(d, Duration.seconds(30)))
    )
    const skewMillis = Duration.toMillis(config.refreshSkew)
    const flights = new Map<string, Flight>()
    const unsaved = new Map<string, Unsaved>()
    const saving = new Map<string, Fiber.RuntimeFiber<unknown, never>>()
    /** Set when the layer closes (the program ends): no new refresh request is sent after it. */
    let closing = false

    const fail = (provider: string) => Effect.flatMap(registry.get(provider), (p) => Effect.fail(notLoggedIn(p)))

    const refused = (login: OAuthCredential, reason: string) =>
      new ReauthRequired({ provider: login.provider, account: login.account, reason })

    /** The login a caller should use: our unsaved newer tokens while the store still holds the ones they replaced. */
    const overlay = (login: OAuthCredential): OAuthCredential => {
      if (unsaved.size === 0) return login
      const pending = unsaved.get(keyString(login))
      return pending !== undefined && sameTokens(login, pending.replaced) ? pending.login : login
    }

    /**
     * The refresh request. Sent only while the layer is open; from the send on, the flight
     * is `sent` and the layer's finalizer waits for it (its answer may be the only copy of
     * a rotated refresh token).
     */
    const refreshGrant = (provider: ProviderConfig, login: OAuthCredential, flight: Flight) =>
      Effect.gen(function*() {
        const refreshToken = login.tokens.refreshToken
        if (refreshToken === undefined) return yield* refused(login, "no refresh token")
        const metadata = yield* registry.metadata(provider)
        yield* Effect.logDebug("refreshing").pipe(
          Effect.annotateLogs({ provider: provider.id, account: login.account, endpoint: logUrl(metadata.token_endpoint), format: provider.refreshFormat })
        )
        const response = yield* Effect.suspend(() => {
          if (closing) return Effect.interrupt
          flight.sent = true
          return requestTokens(
            provider,
            metadata.token_endpoint,
            { grant_type: "refresh_token", refresh_token: refreshToken },
            provider.refreshFormat,
            config.httpTimeout
          ).pipe(Effect.provideService(HttpClient.HttpClient, http))
        })
        const now = yield* DateTime.now
        return new OAuthCredential({
          provider: login.provider,
          account: login.account,
          tokens: yield* tokenSetOf(provider.id, response, login.tokens),
          claims: login.claims,
          obtainedAt: login.obtainedAt,
          refreshedAt: now
        })
      })

    /** The login with the provider's refusal remembered on it. */
    const withRefusal = (login: OAuthCredential, reason: string) =>
      Effect.map(DateTime.now, (at) => new OAuthCredential({ ...login, refusal: Refusal.make({ reason, at }) }))

    /**
     * One attempt, under the store's lock. Tokens stored meanwhile by someone else (another
     * process) are used when their access token is unexpired; otherwise the stored tokens
     * (or our unsaved newer ones) are refreshed and saved. A refusal is saved on the login.
     */
    const attempt = (
      provider: ProviderConfig,
      key: CredentialKey,
      observed: OAuthCredential,
      flight: Flight,
      lost: { answer: string | undefined }
    ): Effect.Effect<OAuthCredential, AuthError> => {
      let outcome: Outcome | undefined
      const id = keyString(key)
      return store.modify(key, (current) =>
        Effect.gen(function*() {
          outcome = undefined
          if (Option.isNone(current) || current.value._tag !== "OAuthCredential") {
            return yield* Effect.fail(notLoggedIn(provider))
          }
          const stored = current.value
          const pending = unsaved.get(id)
          // Our unsaved tokens are newer than the ones they replaced, never than anything else stored.
          if (pending !== undefined && !sameTokens(stored, pending.replaced)) unsaved.delete(id)
          const login = pending !== undefined && unsaved.get(id) === pending ? pending.login : stored
          if (login === stored && stored.refusal !== undefined) return yield* refused(stored, stored.refusal.reason)
          if (login !== stored) outcome = { _tag: "New", replaced: stored, login }
          if (!sameTokens(login, observed) && isFresh(login, yield* Clock.currentTimeMillis, 0)) {
            yield* Effect.logDebug("the tokens changed while this refresh waited; using them").pipe(
              Effect.annotateLogs({ provider: provider.id, account: key.account, rule: "changed_meanwhile" })
            )
            return Option.some<StoredCredential>(login)
          }
          const next = yield* refreshGrant(provider, login, flight).pipe(
            Effect.map((next): OAuthCredential => {
              outcome = { _tag: "New", replaced: stored, login: next }
              return next
            }),
            Effect.catchIf(
              (e): e is TokenEndpointError => e._tag === "TokenEndpointError" && isRefusal(e),
              (e) => {
                const reason = e.error ?? `HTTP ${e.status}`
                const error = lost.answer === undefined
                  ? refused(login, reason)
                  : new ReauthRequired({ provider: login.provider, account: login.account, reason, lostAnswer: lost.answer })
                outcome = { _tag: "Refused", error }
                unsaved.delete(id)
                return Effect.zipRight(
                  Effect.logDebug("refresh refused: a new sign-in is needed").pipe(
                    Effect.annotateLogs({ provider: provider.id, account: login.account, rule: "refusal", reason })
                  ),
                  withRefusal(login, reason)
                )
              }
            )
          )
          return Option.some<StoredCredential>(next)
        })).pipe(
          Effect.matchCauseEffect({
            onSuccess: (next): Effect.Effect<OAuthCredential, AuthError> => {
              if (outcome?._tag === "Refused") return Effect.fail(outcome.error)
              // Saved: any unsaved tokens of this login were either these, or what they were refreshed from.
              if (outcome?._tag === "New") unsaved.delete(id)
              return Option.isSome(next) && next.value._tag === "OAuthCredential"
                ? Effect.succeed(next.value)
                : fail(provider.id)
            },
            onFailure: (cause): Effect.Effect<OAuthCredential, AuthError> => {
              const failure = Cause.failureOption(cause)
              if (outcome?._tag === "Refused") return Effect.fail(outcome.error)
              // New tokens that could not be saved: the old refresh token is spent. Keep them and save later.
              if (outcome?._tag === "New" && Option.isSome(failure) && isStoreError(failure.value)) {
                return Effect.as(keepUnsaved(key, outcome, failure.value), outcome.login)
              }
              return Effect.failCause(cause)
            }
          })
        )
    }

    /** Saves our unsaved tokens of `key` if the store still holds the ones they replaced. */
    const saveUnsaved = (key: CredentialKey) => {
      const id = keyString(key)
      let tried: Unsaved | undefined
      return store.modify(key, (current) =>
        Effect.sync(() => {
          const pending = tried = unsaved.get(id)
          if (pending === undefined) return current
          if (Option.isSome(current) && current.value._tag === "OAuthCredential" && sameTokens(current.value, pending.replaced)) {
            return Option.some<StoredCredential>(pending.login)
          }
          // Someone stored other tokens meanwhile (a new login): theirs win.
          return current
        })).pipe(
          // Only what this save wrote (or found superseded) is done with; a newer unsaved login stays.
          Effect.tap(() => Effect.sync(() => void (tried !== undefined && unsaved.get(id) === tried && unsaved.delete(id))))
        )
    }

    const keepUnsaved = (key: CredentialKey, outcome: Extract<Outcome, { _tag: "New" }>, error: TokenStoreError) =>
      Effect.gen(function*() {
        const id = keyString(key)
        unsaved.set(id, { replaced: outcome.replaced, login: outcome.login })
        yield* Effect.logWarning(
          `agent-auth: the refreshed login for ${id} could not be saved (${error.message}); it is kept in memory and the save is retried`
        ).pipe(Effect.annotateLogs({ provider: key.provider, account: key.account, rule: "save_failed" }))
        if (saving.has(id) || closing) return
        const retry = saveUnsaved(key).pipe(
          Effect.tapError((e) =>
            Effect.logDebug("saving the refreshed login failed again").pipe(Effect.annotateLogs({ provider: key.provider, error: e._tag }))
          ),
          Effect.retry(saveSchedule),
          // A full disk is not freed in a microsecond: the first retry waits too.
          Effect.delay(saveDelay),
          // A refresh that failed to save meanwhile left newer tokens: those too.
          Effect.repeat({ while: () => unsaved.has(id) }),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => saving.delete(id)))
        )
        saving.set(id, yield* Effect.forkDaemon(retry))
      })

    /** Transient failures are retried while the layer is open. */
    const refresh = (key: CredentialKey, observed: OAuthCredential, flight: Flight) => {
      // A request that was sent and failed transiently may have been acted on (rotated) by the provider.
      const lost: { answer: string | undefined } = { answer: undefined }
      return Effect.flatMap(registry.get(key.provider), (provider) =>
        attempt(provider, key, observed, flight, lost).pipe(
          Effect.tapError((e) =>
            Effect.sync(() => {
              if (flight.sent && isTransient(e)) {
                lost.answer = e._tag === "NetworkError" ? e.reason : e._tag === "TokenEndpointError" ? `HTTP ${e.status}` : e._tag
              }
            })
          ),
          Effect.ensuring(Effect.sync(() => void (flight.sent = false))),
          Effect.tapError((e) =>
            isTransient(e)
              ? Effect.logDebug("refresh failed transiently; retrying within the bounded schedule").pipe(
                Effect.annotateLogs({ provider: provider.id, account: key.account, error: e._tag })
              )
              : Effect.void
          ),
          Effect.retry({ schedule, while: (e) => isTransient(e) && !closing })
        ))
    }

    /**
     * The shared refresh of `key`: joined when one is running, else started. It runs in a
     * fiber of its own, so a caller's interruption ends only that caller's wait: once sent,
     * a refresh's answer is saved whatever happens to the callers (the provider may already
     * have rotated the refresh token), and every caller waiting on it gets its result.
     */
    const shared = (key: CredentialKey, observed: OAuthCredential): Effect.Effect<OAuthCredential, AuthError> =>
      Effect.suspend(() => {
        const id = keyString(key)
        const running = flights.get(id)
        if (running !== undefined) return Deferred.await(running.result)
        if (closing) return Effect.interrupt
        const flight: Flight = { result: Deferred.unsafeMake(FiberId.none), sent: false, fiber: undefined }
        flights.set(id, flight)
        const run = refresh(key, observed, flight).pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.suspend(() => {
              if (flights.get(id) === flight) flights.delete(id)
              return Deferred.done(flight.result, exit)
            })
          ),
          Effect.onInterrupt(() =>
            Effect.suspend(() => {
              if (flights.get(id) === flight) flights.delete(id)
              return Deferred.interrupt(flight.result)
            })
          )
        )
        return Effect.zipRight(
          Effect.tap(Effect.forkDaemon(run), (fiber) => Effect.sync(() => void (flight.fiber = fiber))),
          Deferred.await(flight.result)
        )
      })

    // When the program ends: refreshes already sent are awaited (bounded by the token
    // request's timeout, plus the save), the others stopped; unsaved tokens get a last save.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closing = true
        const bound = Duration.sum(config.httpTimeout, Duration.seconds(10))
        yield* Effect.forEach([...flights.values()], (flight) =>
          flight.fiber === undefined
            ? Effect.void
            : flight.sent
            ? Effect.flatMap(
              Effect.timeout(Fiber.await(flight.fiber), bound).pipe(Effect.option),
              (done) => Option.isSome(done) ? Effect.void : Fiber.interrupt(flight.fiber!)
            )
            : Fiber.interrupt(flight.fiber), { concurrency: "unbounded", discard: true })
        yield* Effect.forEach([...saving.values()], (fiber) => Fiber.interrupt(fiber), { discard: true })
        yield* Effect.forEach([...unsaved.keys()], (id) => {
          const [provider, ...rest] = id.split("/")
          return saveUnsaved({ provider: provider!, account: rest.join("/") }).pipe(
            Effect.timeout(Duration.seconds(10)),
            Effect.catchAllCause((cause) =>
              Effect.logWarning(`agent-auth: the refreshed login for ${id} could not be saved before exit`).pipe(
                Effect.annotateLogs({ cause: Cause.isInterruptedOnly(cause) ? "interrupted" : "store error" })
              )
            )
          )
        }, { discard: true })
      })
    )

    const fresh = (key: CredentialKey, options: FreshOptions = {}): Effect.Effect<OAuthCredential, AuthError> => {
      const minMillis = options.minValidity === undefined ? skewMillis : Duration.toMillis(Duration.decode(options.minValidity))
      const force = options.force === true
      // The hot path is one store read (none when the caller just read it) and one clock read.
      const decide = (stored: OAuthCredential): Effect.Effect<OAuthCredential, AuthError> => {
        const login = overlay(stored)
        // A remembered refusal: no request until a new login replaces it.
        if (login.refusal !== undefined) return Effect.fail(refused(login, login.refusal.reason))
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
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
                  min_validity_s: Math.round(refreshMarginMillis(login, minMillis) / 1000)
                })
              ),
              shared(key, login)
            ))
      }
      const go: Effect.Effect<OAuthCredential, AuthError> = Effect.flatMap(store.get(key), (stored) =>
        Option.isSome(stored) && stored.value._tag === "OAuthCredential" ? decide(stored.value) : fail(key.provider))
      const current = options.current
      return current !== undefined && current.provider === key.provider && current.account === key.account
        ? decide(current)
        : go
    }

    // In memory only: what `held` obtained (the credential it came from stays where it is).
    const heldStore = yield* makeMemory
    // Nothing is rotated here (the ADC file keeps its refresh token or key), so a plain single
    // flight suffices: an interrupted grant loses nothing.
    const heldFlights = SingleFlight.make<OAuthCredential, AuthError>()
    const held = (
      key: CredentialKey,
      grant: Effect.Effect<OAuthCredential, AuthError, HttpClient.HttpClient>,
      options: Pick<FreshOptions, "minValidity" | "force"> = {}
    ): Effect.Effect<OAuthCredential, AuthError> => {
      const minMillis = options.minValidity === undefined ? skewMillis : Duration.toMillis(Duration.decode(options.minValidity))
      const obtain: Effect.Effect<OAuthCredential, AuthError> = heldFlights.run(
        `held:${keyString(key)}`,
        grant.pipe(
          Effect.provideService(HttpClient.HttpClient, http),
          Effect.retry({ schedule, while: isTransient }),
          Effect.tap((login) => heldStore.set(login))
        ),
        Effect.suspend(() => look(false))
      )
      const look = (force: boolean): Effect.Effect<OAuthCredential, AuthError> =>
        Effect.flatMap(heldStore.get(key), (current) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            !force && Option.isSome(current) && current.value._tag === "OAuthCredential" &&
              isFresh(current.value, now, minMillis)
              ? Effect.succeed(current.value)
              : obtain))
      return look(options.force === true)
    }

    /** A refusal names the command that signs in again where it is not `agent-auth login <id>` (an MCP server's). */
    const withCommand = (e: ReauthRequired): Effect.Effect<never, AuthError> =>
      e.command !== undefined ? Effect.fail(e) : Effect.flatMap(Effect.option(registry.get(e.provider)), (p) => {
        const command = Option.isSome(p) ? loginCommand(p.value) : undefined
        return Effect.fail(command === undefined ? e : new ReauthRequired({
          provider: e.provider,
          reason: e.reason,
          command,
          ...(e.account === undefined ? {} : { account: e.account }),
          ...(e.lostAnswer === undefined ? {} : { lostAnswer: e.lostAnswer })
        }))
      })

    return Refresher.of({
      fresh: (key, options) => Effect.catchTag(fresh(key, options), "ReauthRequired", withCommand),
      held
    })
  })

export const layer: Layer.Layer<
  Refresher,
  never,
  TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient
> = Layer.scoped(Refresher, make())

/** The refresher with another retry policy (tests, runtimes with their own budget). */
export const layerWith = (
  options: MakeOptions
): Layer.Layer<Refresher, never, TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient> =>
  Layer.scoped(Refresher, make(options))
