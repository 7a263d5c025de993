/**
 * The JWKS cache behind `JwtVerifier`: one entry per `jwks_uri`, fetched through `HttpClient`
 * (never jose's own fetch, so tests, proxies and middleware see every request) and decoded
 * with Schema before jose ever reads it. Concurrent callers share one fetch; a refetch for an
 * unknown `kid` happens at most once per cool-down, measured with Effect's `Clock` from the
 * last fetch, so tokens with made-up `kid`s cannot make us hammer the issuer.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Clock, Deferred, Duration, Effect, Exit, Option, Ref, Schema, type Scope } from "effect"
import { createLocalJWKSet, type JSONWebKeySet, type LocalJWKSet } from "jose"
import { JwtInvalid } from "../Errors.js"

/** One JWK: only the members we select on are typed; jose reads the rest. */
const Jwk = Schema.Struct(
  {
    kty: Schema.String,
    kid: Schema.optional(Schema.String),
    use: Schema.optional(Schema.String),
    alg: Schema.optional(Schema.String)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/** A JSON Web Key Set (RFC 7517 §5). */
export const Jwks = Schema.Struct({ keys: Schema.Array(Jwk) })

/** A decoded set, ready for jose. `version` tells a set from the one that replaced it. */
export interface KeySet {
  readonly resolve: LocalJWKSet
  readonly version: number
}

export interface JwksCache {
  /** The cached set for `uri`, fetched when there is none yet. */
  readonly get: (uri: string) => Effect.Effect<KeySet, JwtInvalid>
  /**
   * A set newer than `stale`: the one another caller already fetched, or a new fetch when the
   * cool-down since the last fetch has passed. `None` during the cool-down.
   */
  readonly refresh: (uri: string, stale: KeySet) => Effect.Effect<Option.Option<KeySet>, JwtInvalid>
}

export interface JwksCacheOptions {
  readonly cooldown: Duration.DurationInput
  readonly timeout: Duration.DurationInput
}

interface Entry {
  readonly current: Option.Option<KeySet>
  /** Clock millis when the last fetch started (successful or not). */
  readonly fetchedAt: number
  readonly pending: Option.Option<Deferred.Deferred<KeySet, JwtInvalid>>
  readonly versions: number
}

const emptyEntry: Entry = { current: Option.none(), fetchedAt: Number.NEGATIVE_INFINITY, pending: Option.none(), versions: 0 }

type Plan =
  | { readonly _tag: "Use"; readonly set: KeySet }
  | { readonly _tag: "Await"; readonly deferred: Deferred.Deferred<KeySet, JwtInvalid> }
  | { readonly _tag: "Fetch" }
  | { readonly _tag: "Cooldown" }

/** Symmetric keys could only ever serve HMAC, which an issuer's JWKS must never offer us. */
const isPublicSigningKey = (jwk: typeof Jwk.Type): boolean => jwk.kty !== "oct" && jwk.use !== "enc"

/**
 * GET and decode one JWKS. Every failure is `JwtInvalid` rule `jwks`, naming the URI (never
 * a token: none is involved here).
 */
export const fetchJwks = (
  client: HttpClient.HttpClient,
  uri: string,
  timeout: Duration.DurationInput
): Effect.Effect<LocalJWKSet, JwtInvalid> => {
  const fail = (reason: string) => new JwtInvalid({ rule: "jwks", detail: `the JWKS at ${uri} ${reason}` })
  return client.execute(HttpClientRequest.get(uri).pipe(HttpClientRequest.acceptJson)).pipe(
    Effect.mapError((e) => fail(`could not be fetched (${e._tag === "RequestError" ? e.reason : `response ${e.reason}`})`)),
    Effect.flatMap((response) =>
      response.status >= 200 && response.status < 300
        ? Effect.mapError(response.json, () => fail(`answered HTTP ${response.status} with a body that is not JSON`))
        : Effect.fail(fail(`answered HTTP ${response.status}`))
    ),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => fail(`did not answer within ${Duration.format(timeout)}`) }),
    Effect.flatMap((json) =>
      Schema.decodeUnknown(Jwks)(json).pipe(Effect.mapError(() => fail("answered JSON that is not a JSON Web Key Set")))
    ),
    Effect.flatMap((jwks) => {
      const keys = jwks.keys.filter(isPublicSigningKey)
      if (keys.length === 0) return Effect.fail(fail("holds no public signing key"))
      return Effect.try({
        try: () => createLocalJWKSet({ keys } as JSONWebKeySet),
        catch: () => fail("is malformed")
      })
    })
  )
}

/**
 * A cache whose fetches run in `Scope` (the layer's), so a caller interrupted mid-fetch does
 * not leave the others waiting on a fetch nobody finishes.
 */
export const make = (options: JwksCacheOptions): Effect.Effect<JwksCache, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const scope = yield* Effect.scope
    const entries = yield* Ref.make(new Map<string, Entry>())
    const cooldownMillis = Duration.toMillis(options.cooldown)

    // Runs in the cache's scope; completes `deferred` however the fetch ends, interruption included.
    const runFetch = (uri: string, deferred: Deferred.Deferred<KeySet, JwtInvalid>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(restore(fetchJwks(client, uri, options.timeout)))
          const result = yield* Ref.modify(entries, (map): readonly [Exit.Exit<KeySet, JwtInvalid>, Map<string, Entry>] => {
            const entry = map.get(uri) ?? emptyEntry
            if (Exit.isFailure(exit)) {
              return [Exit.failCause(exit.cause), new Map(map).set(uri, { ...entry, pending: Option.none() })]
            }
            const set: KeySet = { resolve: exit.value, version: entry.versions + 1 }
            return [
              Exit.succeed(set),
              new Map(map).set(uri, { ...entry, current: Option.some(set), pending: Option.none(), versions: set.version })
            ]
          })
          yield* Deferred.done(deferred, result)
        })
      )

    const load = (uri: string, stale: Option.Option<KeySet>): Effect.Effect<Option.Option<KeySet>, JwtInvalid> =>
      Effect.gen(function*() {
        // The common case, a cached set and no refetch wanted, allocates nothing.
        if (Option.isNone(stale)) {
          const hit = (yield* Ref.get(entries)).get(uri)
          if (hit !== undefined && Option.isNone(hit.pending) && Option.isSome(hit.current)) return hit.current
        }
        const now = yield* Clock.currentTimeMillis
        const mine = yield* Deferred.make<KeySet, JwtInvalid>()
        const plan = yield* Ref.modify(entries, (map): readonly [Plan, Map<string, Entry>] => {
          const entry = map.get(uri) ?? emptyEntry
          if (Option.isSome(entry.pending)) return [{ _tag: "Await", deferred: entry.pending.value }, map]
          if (Option.isSome(entry.current)) {
            const current = entry.current.value
            if (Option.isNone(stale) || current.version !== stale.value.version) return [{ _tag: "Use", set: current }, map]
            if (now - entry.fetchedAt < cooldownMillis) return [{ _tag: "Cooldown" }, map]
          }
          // Nothing cached yet (or the last fetch failed), or a stale set past its cool-down.
          return [{ _tag: "Fetch" }, new Map(map).set(uri, { ...entry, pending: Option.some(mine), fetchedAt: now })]
        })
        switch (plan._tag) {
          case "Use":
            return Option.some(plan.set)
          case "Cooldown":
            return Option.none()
          case "Await":
            return Option.some(yield* Deferred.await(plan.deferred))
          case "Fetch":
            yield* Effect.forkIn(runFetch(uri, mine), scope)
            return Option.some(yield* Deferred.await(mine))
        }
      })

    return {
      get: (uri) =>
        load(uri, Option.none()).pipe(
          // `load` without a stale set never answers None; keep the type honest all the same.
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new JwtInvalid({ rule: "jwks", detail: `no JWKS is available for ${uri}` })),
            onSome: Effect.succeed
          }))
        ),
      refresh: (uri, stale) => load(uri, Option.some(stale))
    }
  })
