/**
 * The fake server's RS256 signing keys. The newest key signs; older ones stay in the
 * JWKS unless a rotation drops them, so tests can meet both "new kid, refetch" and
 * "old kid gone".
 *
 * Keys are made extractable, and each keeps its private JWK, so a snapshot can carry them
 * and a restored server keeps signing with the same `kid` (a fake server's keys are not
 * secrets worth protecting; real servers never do this).
 */
import { Effect, Ref } from "effect"
import * as jose from "jose"

export interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicJwk: jose.JWK
  /** The whole key as a JWK (private members included), with its `kid`. */
  readonly privateJwk: RsaPrivateJwk
}

export interface RsaPrivateJwk {
  readonly kty: "RSA"
  readonly kid: string
  readonly n: string
  readonly e: string
  readonly d: string
  readonly p: string
  readonly q: string
  readonly dp: string
  readonly dq: string
  readonly qi: string
}

export interface Keys {
  readonly current: Effect.Effect<SigningKey>
  /** Every key in the JWKS, oldest first; the last one signs. */
  readonly all: Effect.Effect<ReadonlyArray<SigningKey>>
  readonly jwks: Effect.Effect<{ readonly keys: ReadonlyArray<jose.JWK> }>
  readonly rotate: (keepOld: boolean) => Effect.Effect<string>
  readonly sign: (payload: jose.JWTPayload) => Effect.Effect<string>
}

const publicPart = (jwk: { readonly kty?: string; readonly n?: string; readonly e?: string }): jose.JWK => ({
  kty: jwk.kty!,
  n: jwk.n!,
  e: jwk.e!
})

/** Only the RSA members: no `ext` or `key_ops` from WebCrypto's export. */
const rsaPrivate = (jwk: jose.JWK, kid: string): RsaPrivateJwk => {
  const { d, dp, dq, e, n, p, q, qi } = jwk
  if (jwk.kty !== "RSA" || [d, dp, dq, e, n, p, q, qi].some((v) => typeof v !== "string")) {
    throw new Error("not an RSA private key")
  }
  return { kty: "RSA", kid, n: n!, e: e!, d: d!, p: p!, q: q!, dp: dp!, dq: dq!, qi: qi! }
}

const generate: Effect.Effect<SigningKey> = Effect.promise(async () => {
  const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true })
  const privateJwk = await jose.exportJWK(privateKey)
  const kid = await jose.calculateJwkThumbprint(publicPart(privateJwk))
  return {
    kid,
    privateKey,
    publicJwk: { ...publicPart(privateJwk), kid, alg: "RS256", use: "sig" },
    privateJwk: rsaPrivate(privateJwk, kid)
  }
})

/**
 * A signing key from a private RSA JWK (a snapshot's). Fails when the JWK is not a usable
 * RS256 private key, or when its `kid` is not the thumbprint of its public part (a key
 * that would not verify the tokens it is supposed to have signed).
 */
export const fromPrivateJwk = (jwk: RsaPrivateJwk): Effect.Effect<SigningKey, Error> =>
  Effect.tryPromise({
    try: async () => {
      const kid = await jose.calculateJwkThumbprint(publicPart(jwk))
      if (jwk.kid !== kid) throw new Error("the key's kid is not its thumbprint")
      const privateKey = await jose.importJWK({ ...jwk, alg: "RS256" }, "RS256", { extractable: true })
      if (privateKey instanceof Uint8Array || privateKey.type !== "private") throw new Error("not a private key")
      return { kid, privateKey, publicJwk: { ...publicPart(jwk), kid, alg: "RS256", use: "sig" }, privateJwk: rsaPrivate(jwk, kid) }
    },
    catch: (e) => (e instanceof Error ? e : new Error(String(e)))
  })

/** Keys starting from `initial` (oldest first), or from one new key. */
export const makeKeysFrom = (initial?: ReadonlyArray<SigningKey>): Effect.Effect<Keys> =>
  Effect.gen(function*() {
    const first = initial !== undefined && initial.length > 0 ? initial : [yield* generate]
    // Newest last.
    const ref = yield* Ref.make<ReadonlyArray<SigningKey>>(first)
    const current = Effect.map(Ref.get(ref), (ks) => ks[ks.length - 1]!)
    return {
      current,
      all: Ref.get(ref),
      jwks: Effect.map(Ref.get(ref), (ks) => ({ keys: ks.map((k) => k.publicJwk) })),
      rotate: (keepOld) =>
        Effect.flatMap(generate, (k) => Effect.as(Ref.update(ref, (ks) => (keepOld ? [...ks, k] : [k])), k.kid)),
      sign: (payload) =>
        Effect.flatMap(current, (k) =>
          Effect.promise(() => new jose.SignJWT(payload).setProtectedHeader({ alg: "RS256", kid: k.kid, typ: "JWT" }).sign(k.privateKey))
        )
    }
  })

export const makeKeys: Effect.Effect<Keys> = makeKeysFrom()
