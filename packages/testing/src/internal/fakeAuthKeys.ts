/**
 * The fake server's RS256 signing keys. The newest key signs; older ones stay in the
 * JWKS unless a rotation drops them, so tests can meet both "new kid, refetch" and
 * "old kid gone".
 */
import { Effect, Ref } from "effect"
import * as jose from "jose"

export interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicJwk: jose.JWK
}

export interface Keys {
  readonly current: Effect.Effect<SigningKey>
  readonly jwks: Effect.Effect<{ readonly keys: ReadonlyArray<jose.JWK> }>
  readonly rotate: (keepOld: boolean) => Effect.Effect<string>
  readonly sign: (payload: jose.JWTPayload) => Effect.Effect<string>
}

const generate: Effect.Effect<SigningKey> = Effect.promise(async () => {
  const { privateKey, publicKey } = await jose.generateKeyPair("RS256")
  const jwk = await jose.exportJWK(publicKey)
  const kid = await jose.calculateJwkThumbprint(jwk)
  return { kid, privateKey, publicJwk: { ...jwk, kid, alg: "RS256", use: "sig" } }
})

export const makeKeys: Effect.Effect<Keys> = Effect.gen(function*() {
  const first = yield* generate
  // Newest last.
  const ref = yield* Ref.make<ReadonlyArray<SigningKey>>([first])
  const current = Effect.map(Ref.get(ref), (ks) => ks[ks.length - 1]!)
  return {
    current,
    jwks: Effect.map(Ref.get(ref), (ks) => ({ keys: ks.map((k) => k.publicJwk) })),
    rotate: (keepOld) =>
      Effect.flatMap(generate, (k) => Effect.as(Ref.update(ref, (ks) => (keepOld ? [...ks, k] : [k])), k.kid)),
    sign: (payload) =>
      Effect.flatMap(current, (k) =>
        Effect.promise(() => new jose.SignJWT(payload).setProtectedHeader({ alg: "RS256", kid: k.kid, typ: "JWT" }).sign(k.privateKey))
      )
  }
})
