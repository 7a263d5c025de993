/**
 * A deterministic `SecureRandom` — FOR TESTS ONLY. Its bytes are a pure function of the
 * seed and of how many bytes were asked for before, so a test can predict a login's
 * `state`, PKCE verifier and nonce, or compare two runs. It is not random at all: never
 * provide it to a program that talks to a real authorization server.
 */
import { SecureRandom } from "@agent-auth/core"
import { Effect, Layer, Ref } from "effect"

/** splitmix32's finalizer: a well-mixed 32-bit word from a 32-bit input. */
const mix = (x: number): number => {
  let t = (x + 0x9e3779b9) | 0
  t ^= t >>> 16
  t = Math.imul(t, 0x21f0aaad)
  t ^= t >>> 15
  t = Math.imul(t, 0x735a2d97)
  return (t ^ (t >>> 15)) >>> 0
}

/** Byte `i` of the stream for `seed`. */
const byteAt = (seed: number, i: number): number => {
  const word = mix(mix(seed) ^ Math.floor(i / 4))
  return (word >>> ((i % 4) * 8)) & 0xff
}

/**
 * A generator whose byte stream starts over for each `make`. Calls draw consecutive,
 * non-overlapping slices of the stream (atomically, so concurrent fibers never share bytes).
 */
export const make = (seed = 0): Effect.Effect<SecureRandom.SecureRandomShape> =>
  Effect.map(Ref.make(0), (position) => ({
    bytes: (n) =>
      Effect.map(
        Ref.getAndUpdate(position, (p) => p + n),
        (start) => {
          const out = new Uint8Array(n)
          for (let i = 0; i < n; i++) out[i] = byteAt(seed | 0, start + i)
          return out
        }
      )
  }))

/** `SecureRandom` for tests: deterministic per seed (default 0), restarting with each build of the layer. */
export const layer = (seed = 0): Layer.Layer<SecureRandom.SecureRandom> => Layer.effect(SecureRandom.SecureRandom, make(seed))
