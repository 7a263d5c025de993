import { SecureRandom } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as TestSecureRandom from "../src/TestSecureRandom.js"

const draw = (n: number) => Effect.flatMap(SecureRandom.SecureRandom, (r) => r.bytes(n))
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

describe("TestSecureRandom", () => {
  it.effect("the same seed gives the same bytes in every build of the layer", () =>
    Effect.gen(function*() {
      const a = yield* Effect.provide(Effect.all([draw(16), draw(32)]), TestSecureRandom.layer(42))
      const b = yield* Effect.provide(Effect.all([draw(16), draw(32)]), TestSecureRandom.layer(42))
      expect(a.map(hex)).toEqual(b.map(hex))
      const other = yield* Effect.provide(draw(16), TestSecureRandom.layer(43))
      expect(hex(other)).not.toBe(hex(a[0]))
    }))

  it.effect("consecutive draws continue one stream and never repeat a slice", () =>
    Effect.gen(function*() {
      const [x, y] = yield* Effect.provide(Effect.all([draw(5), draw(11)]), TestSecureRandom.layer())
      const whole = yield* Effect.provide(draw(16), TestSecureRandom.layer())
      expect(hex(x) + hex(y)).toBe(hex(whole))
      expect(hex(x)).not.toBe(hex(y.slice(0, 5)))
    }))

  it.effect("concurrent draws get disjoint slices of the stream", () =>
    Effect.gen(function*() {
      const slices = yield* Effect.provide(
        Effect.forEach(Array.from({ length: 200 }), () => draw(8), { concurrency: "unbounded" }),
        TestSecureRandom.layer(7)
      )
      const whole = yield* Effect.provide(draw(1600), TestSecureRandom.layer(7))
      const expected = Array.from({ length: 200 }, (_, i) => hex(whole.slice(i * 8, i * 8 + 8))).sort()
      expect(slices.map(hex).sort()).toEqual(expected)
      expect(new Set(expected).size).toBe(200)
    }))

  it.effect("the bytes look random enough for tests (every byte value appears)", () =>
    Effect.gen(function*() {
      const bytes = yield* Effect.provide(draw(8192), TestSecureRandom.layer(1))
      expect(new Set(bytes).size).toBe(256)
      expect(bytes.length).toBe(8192)
    }))

  it.effect("feeds core's SecureRandom.token (a PKCE verifier of 32 bytes is 43 base64url chars)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.provide(Effect.all([SecureRandom.token(32), SecureRandom.token(32)]), TestSecureRandom.layer(9))
      expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(a).not.toBe(b)
      const again = yield* Effect.provide(SecureRandom.token(32), TestSecureRandom.layer(9))
      expect(again).toBe(a)
    }))
})
