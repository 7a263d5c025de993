/**
 * The JWKS cache behind `JwtVerifier`: one entry per `jwks_uri`, fetched through `HttpClient`
 * (never jose's own fetch, so tests, proxies and middleware see every request) and decoded
 * with Schema before jose ever reads it. Concurrent callers share one fetch; a refetch for an
 * unknown `kid` happens at most once per cool-down, measured with Effect's `Clock` from the
 * last fetch, so tokens with made-up `kid`s cannot make us hammer the issuer.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Clock, Deferred, Duration, Effect, Exit, Option, Schema, type Scope } from "effect"
import { createLocalJWKSet, type CryptoKey, type JSONWebKeySet, type JWTVerifyGetKey, type LocalJWKSet } from "jose"
import { JwtInvalid } from "../Errors.js"
import { readJsonBounded, tooLargeReason } from "./http.js"

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
  /** jose's key selection over the set (kty, kid, alg, use, key_ops, crv). */
  readonly resolve: LocalJWKSet
  /**
   * The key for a header's `alg` and `kid`: the imported key jose selected for them before, or
   * else a resolver that selects through `resolve` and remembers a single match.
   */
  readonly keyFor: (alg: string, kid: unknown) => CryptoKey | JWTVerifyGetKey
  readonly version: number
}

/** Bounds the selections remembered per set (each is a key of the set under one `alg`). */
const maxSelections = 64

/**
 * jose selects a key of a compact JWS from its `alg` and `kid` alone, so within one set a
 * selection never changes: remembering it spares every later token jose's lookup (a filter
 * over the set and an await on its import cache). Only single matches are remembered (several keep the try-each path), and only keys
 * of this set, so a made-up `kid` cannot grow the memory.
 */
export const makeKeySet = (resolve: LocalJWKSet, version: number): KeySet => {
  const selected = new Map<string, CryptoKey>()
  const selection = (alg: unknown, kid: unknown): string | undefined =>
    typeof alg !== "string" ? undefined : kid === undefined ? alg : typeof kid === "string" ? `${alg} ${kid}` : undefined
  const remembering: JWTVerifyGetKey = async (header, token) => {
    const key = await resolve(header, token)
    const id = selection(header.alg, header.kid)
    if (id !== undefined && selected.size < maxSelections) selected.set(id, key)
    return key
  }
  return {
    resolve,
    version,
    keyFor: (alg, kid) => {
      const id = selection(alg, kid)
      return (id === undefined ? undefined : selected.get(id)) ?? remembering
    }
  }
}

export interface JwksCache {
  /** The cached set for `uri` when there is one and no fetch of it is under way (no fetch, no wait). */
  readonly cached: (uri: string) => KeySet | undefined
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
        ? readJsonBounded(response).pipe(
          Effect.mapError((e) => fail(e._tag === "TooLarge" ? tooLargeReason(e.limit) : `could not be read (${e.reason})`)),
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(fail(`answered HTTP ${response.status} with a body that is not JSON`)),
            onSome: Effect.succeed
          }))
        )
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
    // Read and written only inside synchronous steps (JavaScript runs one at a time), so every
    // read-decide-write below is atomic, as with a Ref, and a cache hit can be read without one.
    const entries = new Map<string, Entry>()
    const cooldownMillis = Duration.toMillis(options.cooldown)

    const cached = (uri: string): KeySet | undefined => {
      const hit = entries.get(uri)
      return hit !== undefined && Option.isNone(hit.pending) && Option.isSome(hit.current) ? hit.current.value : undefined
    }

    // Runs in the cache's scope; completes `deferred` however the fetch ends, interruption included.
    const runFetch = (uri: string, deferred: Deferred.Deferred<KeySet, JwtInvalid>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(restore(fetchJwks(client, uri, options.timeout)))
          const result = yield* Effect.sync((): Exit.Exit<KeySet, JwtInvalid> => {
            const entry = entries.get(uri) ?? emptyEntry
            if (Exit.isFailure(exit)) {
              entries.set(uri, { ...entry, pending: Option.none() })
              return Exit.failCause(exit.cause)
            }
            const set = makeKeySet(exit.value, entry.versions + 1)
            entries.set(uri, { ...entry, current: Option.some(set), pending: Option.none(), versions: set.version })
            return Exit.succeed(set)
          })
          yield* Deferred.done(deferred, result)
        })
      )

    const load = (uri: string, stale: Option.Option<KeySet>): Effect.Effect<Option.Option<KeySet>, JwtInvalid> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const mine = yield* Deferred.make<KeySet, JwtInvalid>()
        const plan = yield* Effect.sync((): Plan => {
          const entry = entries.get(uri) ?? emptyEntry
          if (Option.isSome(entry.pending)) return { _tag: "Await", deferred: entry.pending.value }
          if (Option.isSome(entry.current)) {
            const current = entry.current.value
            if (Option.isNone(stale) || current.version !== stale.value.version) return { _tag: "Use", set: current }
            if (now - entry.fetchedAt < cooldownMillis) return { _tag: "Cooldown" }
          }
          // Nothing cached yet (or the last fetch failed), or a stale set past its cool-down.
          entries.set(uri, { ...entry, pending: Option.some(mine), fetchedAt: now })
          return { _tag: "Fetch" }
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
      cached,
      get: (uri) =>
        Effect.suspend(() => {
          // The common case: a cached set and no fetch under way.
          const hit = cached(uri)
          if (hit !== undefined) return Effect.succeed(hit)
          return load(uri, Option.none()).pipe(
            // `load` without a stale set never answers None; keep the type honest all the same.
            Effect.flatMap(Option.match({
              onNone: () => Effect.fail(new JwtInvalid({ rule: "jwks", detail: `no JWKS is available for ${uri}` })),
              onSome: Effect.succeed
            }))
          )
        }),
      refresh: (uri, stale) => load(uri, Option.some(stale))
    }
  })
