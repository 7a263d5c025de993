/**
 * ID token verification with jose: the JWKS is fetched through `HttpClient`, cached, and
 * refetched once on an unknown `kid` (at most once per cool-down); algorithms come from an
 * allow-list (never `none`, never HMAC for an asymmetric issuer); `iss`, `aud`, `azp`,
 * `exp`, `nbf`, `iat` and `nonce` are checked against Effect's `Clock`, with a 30 s tolerance.
 */
import type { HttpClient } from "@effect/platform"
import { Clock, Context, Duration, Effect, FiberRef, Layer, LogLevel, Option, Redacted, type Scope } from "effect"
import {
  type CryptoKey,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions
} from "jose"
import { JwtInvalid } from "./Errors.js"
import * as Jwks from "./internal/jwks.js"

export interface VerifyOptions {
  readonly issuer: string
  readonly jwksUri: string
  /** The client id: `aud` must contain it, and `azp` equal it (required when `aud` has several values). */
  readonly clientId: string
  /** Algorithms the issuer advertises (`id_token_signing_alg_values_supported`); intersected with our allow-list. */
  readonly algorithms?: ReadonlyArray<string> | undefined
  /** The nonce this login sent; the token must carry it. */
  readonly nonce?: string | undefined
}

/** The payload of a verified token. */
export type VerifiedClaims = Readonly<Record<string, unknown>> & {
  readonly iss: string
  readonly sub: string
  readonly aud: string | ReadonlyArray<string>
  readonly exp: number
}

export interface JwtVerifierShape {
  readonly verify: (token: Redacted.Redacted<string>, options: VerifyOptions) => Effect.Effect<VerifiedClaims, JwtInvalid>
}

export class JwtVerifier extends Context.Tag("@agent-auth/core/JwtVerifier")<JwtVerifier, JwtVerifierShape>() {}

/** Asymmetric signature algorithms only: never `none`, never HMAC (an issuer's public key is no secret). */
export const allowedAlgorithms: ReadonlyArray<string> = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA"
]

/** Clock skew accepted on `exp`, `nbf` and `iat`, in seconds. */
export const clockToleranceSeconds = 30

/** The least time between two fetches of one JWKS when a token names an unknown `kid`. */
export const jwksRefetchCooldown: Duration.Duration = Duration.seconds(60)

/** How long a JWKS endpoint may take to answer. */
export const jwksTimeout: Duration.Duration = Duration.seconds(10)

const invalid = (rule: string, detail: string) => new JwtInvalid({ rule, detail })

/** Values from the token are attacker-chosen: shown shortened, and only where they help diagnose. */
const show = (value: unknown): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value)
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text)
}

const algorithmsFor = (options: VerifyOptions): ReadonlyArray<string> =>
  options.algorithms === undefined ? allowedAlgorithms : allowedAlgorithms.filter((alg) => options.algorithms!.includes(alg))

/** The protected header, read before any key is looked up (the `alg` check comes first). */
const readHeader = (jwt: string): Record<string, unknown> | JwtInvalid => {
  if (jwt.split(".").length !== 3) {
    return invalid("format", "the token is not a compact JWS (three dot-separated parts)")
  }
  try {
    return decodeProtectedHeader(jwt) as Record<string, unknown>
  } catch {
    return invalid("format", "the token's header is not base64url-encoded JSON")
  }
}

/** jose's failure, or the sign that no key in the set fits the header. */
type Attempt =
  | { readonly _tag: "Verified"; readonly payload: JWTPayload }
  | { readonly _tag: "NoKey" }
  | { readonly _tag: "Failed"; readonly error: unknown }

/**
 * `jwtVerify` over a local set. When several keys fit a header without `kid`, jose hands them
 * over as an async iterator: the first one whose signature verifies decides.
 */
const attempt = async (jwt: string, key: CryptoKey | JWTVerifyGetKey, options: JWTVerifyOptions): Promise<Attempt> => {
  try {
    return { _tag: "Verified", payload: (await jwtVerify(jwt, key, options)).payload }
  } catch (error) {
    if (error instanceof errors.JWKSNoMatchingKey) return { _tag: "NoKey" }
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) return { _tag: "Failed", error }
    for await (const key of error as unknown as AsyncIterable<CryptoKey>) {
      try {
        return { _tag: "Verified", payload: (await jwtVerify(jwt, key, options)).payload }
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) return { _tag: "Failed", error: inner }
      }
    }
    return { _tag: "Failed", error: new errors.JWSSignatureVerificationFailed() }
  }
}

const claimRules = new Set(["iss", "aud", "sub", "exp", "nbf", "iat"])

/** jose's error as a rule; its messages are fixed strings, but we write our own details anyway. */
const fromJose = (error: unknown, options: VerifyOptions): JwtInvalid => {
  if (error instanceof errors.JWTExpired || error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim
    const rule = claimRules.has(claim) ? claim : "format"
    if (error.reason === "missing") return invalid(rule, `the token has no "${claim}" claim`)
    if (error.reason === "invalid") return invalid(rule, `the token's "${claim}" claim has the wrong type`)
    switch (claim) {
      case "iss":
        return invalid("iss", `the token was issued by ${show(error.payload.iss)}, not ${show(options.issuer)}`)
      case "aud":
        return invalid("aud", `the token's audience ${show(error.payload.aud)} does not include the client id ${show(options.clientId)}`)
      case "exp":
        return invalid("exp", `the token expired (beyond ${clockToleranceSeconds} s of clock tolerance)`)
      case "nbf":
        return invalid("nbf", `the token is not valid yet (beyond ${clockToleranceSeconds} s of clock tolerance)`)
      default:
        return invalid(rule, `the "${claim}" claim check failed`)
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return invalid("alg", "the token's algorithm is not allowed")
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return invalid("signature", "the signature does not match the token's contents")
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return invalid("format", "the token is not a well-formed signed JWT")
  }
  if (error instanceof errors.JWKInvalid || error instanceof errors.JWKSInvalid) {
    return invalid("jwks", `a key in the JWKS at ${options.jwksUri} could not be used`)
  }
  if (error instanceof errors.JOSENotSupported) return invalid("format", "the token uses a feature that is not supported")
  // Anything else fails closed.
  return invalid("signature", "the token could not be verified")
}

/** The checks jose leaves to us: `sub`, `aud` shape, `azp`, `iat` in the future, `nonce`. */
const checkClaims = (payload: JWTPayload, options: VerifyOptions, nowSeconds: number): Effect.Effect<VerifiedClaims, JwtInvalid> => {
  const { aud, azp, iat, nonce, sub } = payload as Record<string, unknown>
  if (typeof sub !== "string" || sub.length === 0) return Effect.fail(invalid("sub", `the token has no "sub" claim`))
  const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : undefined
  if (audiences === undefined || !audiences.every((a) => typeof a === "string")) {
    return Effect.fail(invalid("aud", `the token's "aud" claim is not a string or a list of strings`))
  }
  if (audiences.length > 1 && azp === undefined) {
    return Effect.fail(invalid("azp", `the token has several audiences but no "azp" claim naming ${show(options.clientId)}`))
  }
  if (azp !== undefined && azp !== options.clientId) {
    return Effect.fail(invalid("azp", `the token was issued to ${show(azp)}, not ${show(options.clientId)}`))
  }
  if (typeof iat !== "number" || iat > nowSeconds + clockToleranceSeconds) {
    return Effect.fail(invalid("iat", `the token's issue time is in the future (beyond ${clockToleranceSeconds} s of clock tolerance)`))
  }
  if (options.nonce !== undefined) {
    if (nonce === undefined) return Effect.fail(invalid("nonce", "the token carries no nonce, but this login sent one"))
    if (nonce !== options.nonce) return Effect.fail(invalid("nonce", "the token's nonce is not the one this login sent"))
  }
  return Effect.succeed(payload as VerifiedClaims)
}

const requiredClaims: ReadonlyArray<string> = ["iss", "sub", "aud", "exp", "iat"]

/** A verifier whose JWKS fetches run in the given scope (a layer's). */
export const make: Effect.Effect<JwtVerifierShape, never, HttpClient.HttpClient | Scope.Scope> = Effect.gen(function*() {
  const cache = yield* Jwks.make({ cooldown: jwksRefetchCooldown, timeout: jwksTimeout })

  // One fiber step reads the clock and the log level; the rest is plain code around one promise.
  const verify = (token: Redacted.Redacted<string>, options: VerifyOptions): Effect.Effect<VerifiedClaims, JwtInvalid> =>
    Effect.withFiberRuntime((fiber) => {
      const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
      const checked = check(Redacted.value(token), options, now)
      // The trace's annotations cost more than the rest of our part of a verification: build
      // them only when a debug line can be written at all.
      return LogLevel.greaterThan(fiber.getFiberRef(FiberRef.currentMinimumLogLevel), LogLevel.Debug)
        ? checked
        : trace(checked, options)
    })

  // The trace names the rules, never the token or its claims.
  const trace = (checked: Effect.Effect<VerifiedClaims, JwtInvalid>, options: VerifyOptions) =>
    Effect.tapBoth(checked, {
      onSuccess: () =>
        Effect.logDebug("ID token accepted").pipe(
          Effect.annotateLogs({
            issuer: options.issuer,
            jwks_uri: options.jwksUri,
            rules: `alg,signature,iss,aud,azp,exp,nbf,iat,sub${options.nonce === undefined ? "" : ",nonce"}`
          })
        ),
      onFailure: (e) =>
        Effect.logDebug("ID token refused").pipe(
          Effect.annotateLogs({ issuer: options.issuer, jwks_uri: options.jwksUri, rule: e.rule })
        )
    })

  /** Every rule, with `now` (Clock millis) read once for the whole token. */
  const check = (jwt: string, options: VerifyOptions, now: number): Effect.Effect<VerifiedClaims, JwtInvalid> => {
    const header = readHeader(jwt)
    if (header instanceof JwtInvalid) return Effect.fail(header)
    const algorithms = algorithmsFor(options)
    const alg = header.alg
    if (typeof alg !== "string" || !algorithms.includes(alg)) {
      return Effect.fail(
        invalid("alg", `the algorithm ${show(alg)} is not among those accepted (${algorithms.join(", ") || "none in common with the issuer's"})`)
      )
    }
    const joseOptions: JWTVerifyOptions = {
      algorithms: [...algorithms],
      issuer: options.issuer,
      audience: options.clientId,
      clockTolerance: clockToleranceSeconds,
      currentDate: new Date(now),
      requiredClaims: [...requiredClaims]
    }
    const run = (set: Jwks.KeySet) =>
      Effect.tryPromise({
        try: () => attempt(jwt, set.keyFor(alg, header.kid), joseOptions),
        catch: (error) => fromJose(error, options)
      })

    const settle = (result: Attempt): Effect.Effect<VerifiedClaims, JwtInvalid> => {
      switch (result._tag) {
        case "NoKey": {
          const kid = header.kid === undefined ? "no kid" : `kid ${show(header.kid)}`
          return Effect.fail(invalid("kid", `no key in the JWKS at ${options.jwksUri} matches ${kid} and alg ${alg}`))
        }
        case "Failed":
          return Effect.fail(fromJose(result.error, options))
        case "Verified":
          return checkClaims(result.payload, options, Math.floor(now / 1000))
      }
    }

    // An unknown kid may mean the issuer rotated its keys: look again, at most once per cool-down.
    const lookAgain = (stale: Jwks.KeySet) =>
      Effect.gen(function*() {
        const refreshed = yield* cache.refresh(options.jwksUri, stale)
        yield* Effect.logDebug("no key for the token's kid; JWKS looked up again").pipe(
          Effect.annotateLogs({ jwks_uri: options.jwksUri, refetched: Option.isSome(refreshed) ? "yes" : "no (cool-down)" })
        )
        return Option.isSome(refreshed) ? yield* run(refreshed.value) : ({ _tag: "NoKey" } as const)
      })

    const withSet = (set: Jwks.KeySet) =>
      Effect.flatMap(run(set), (result) => result._tag === "NoKey" ? Effect.flatMap(lookAgain(set), settle) : settle(result))

    const set = cache.cached(options.jwksUri)
    return set !== undefined ? withSet(set) : Effect.flatMap(cache.get(options.jwksUri), withSet)
  }

  return { verify }
})

/** The verifier over the ambient `HttpClient`; its JWKS cache lives as long as the layer. */
export const layer: Layer.Layer<JwtVerifier, never, HttpClient.HttpClient> = Layer.scoped(JwtVerifier, make)

/**
 * The claims of a JWT, decoded WITHOUT checking its signature or any claim.
 *
 * For display only (`status` showing an email or plan). Never trust the result: anyone can
 * write any claim into an unverified token. Use `JwtVerifier.verify` for anything that decides.
 */
export const unverifiedClaims = (token: string): Option.Option<Record<string, unknown>> => {
  try {
    return Option.some(decodeJwt(token) as Record<string, unknown>)
  } catch {
    return Option.none()
  }
}
