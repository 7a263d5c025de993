/**
 * Cryptographic randomness for `state`, PKCE verifiers and nonces. Never Effect's
 * `Random`, which is a seeded PRNG and not meant for secrets.
 */
import { Context, Effect, Layer } from "effect"

export interface SecureRandomShape {
  /** `n` bytes from a CSPRNG. */
  readonly bytes: (n: number) => Effect.Effect<Uint8Array>
}

export class SecureRandom extends Context.Tag("@agent-auth/core/SecureRandom")<SecureRandom, SecureRandomShape>() {}

/** Web Crypto's `getRandomValues`, present in Node, Deno, Bun and browsers. */
export const make: SecureRandomShape = {
  bytes: (n) =>
    Effect.sync(() => {
      const out = new Uint8Array(n)
      globalThis.crypto.getRandomValues(out)
      return out
    })
}

export const layer: Layer.Layer<SecureRandom> = Layer.succeed(SecureRandom, make)

/** base64url without padding (RFC 4648 §5), the encoding of PKCE verifiers and states. */
export const base64url = (bytes: Uint8Array): string => {
  let s = ""
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

/** `n` random bytes as base64url. */
export const token = (n: number): Effect.Effect<string, never, SecureRandom> =>
  Effect.flatMap(SecureRandom, (r) => Effect.map(r.bytes(n), base64url))
