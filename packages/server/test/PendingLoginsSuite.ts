/**
 * The one suite every `PendingLogins` layer passes (as TokenStoreSuite is for token
 * stores). The layer is built afresh for each test. Time is the TestClock's: expiry is
 * shown by moving it, never by waiting.
 *
 * A shared database may hold other tests' rows (other files, other runs): every test
 * starts its TestClock at the wall time, so what it saves expires in step with real
 * logins beside it, and its states are random, so they never meet another test's.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted, TestClock } from "effect"
import * as Crypto from "node:crypto"
import type { PendingLogin } from "../src/PendingLogins.js"
import { PendingLogins } from "../src/PendingLogins.js"

const MINUTE = 60_000

/** The wall time every test starts at. */
let start = 0
/** This test's own version of a state name. */
let suffix = ""

export const pendingLogin = (name: string, principal: string, expiresIn = 10 * MINUTE): PendingLogin => {
  const state = `${name}-${suffix}`
  return {
  principal,
  expiresAt: start + expiresIn,
  login: {
    provider: "acme",
    authorizationUrl: `https://issuer.example/authorize?state=${state}`,
    redirectUri: "https://service.example/auth/callback",
    state,
    codeVerifier: Redacted.make(`verifier-of-${state}`),
    nonce: `nonce-of-${state}`
  }
}
}

/** Everything but the Redacted verifier compares with toEqual; the verifier by its value. */
const plain = (p: PendingLogin) => ({ ...p, login: { ...p.login, codeVerifier: Redacted.value(p.login.codeVerifier) } })

export const suite = <E>(name: string, layer: Layer.Layer<PendingLogins, E>) =>
  describe(`PendingLogins suite: ${name}`, () => {
    const run = <A, E2>(effect: Effect.Effect<A, E2, PendingLogins>) =>
      Effect.suspend(() => {
        start = Date.now()
        suffix = Crypto.randomBytes(8).toString("hex")
        return TestClock.setTime(start)
      }).pipe(Effect.zipRight(Effect.provide(effect, layer)))
    /** The state a test's `pendingLogin(name)` carries. */
    const s = (name: string) => `${name}-${suffix}`

    it.effect("a saved login is taken back whole, nonce and verifier included", () =>
      run(Effect.gen(function*() {
        const logins = yield* PendingLogins
        const saved = pendingLogin("s1", "alice")
        yield* logins.save(saved)
        expect(plain(yield* logins.take(s("s1")))).toEqual(plain(saved))
      })))

    it.effect("a login without a nonce keeps none", () =>
      run(Effect.gen(function*() {
        const logins = yield* PendingLogins
        const saved = pendingLogin("s-no-nonce", "alice")
        yield* logins.save({ ...saved, login: { ...saved.login, nonce: undefined } })
        expect((yield* logins.take(s("s-no-nonce"))).login.nonce).toBeUndefined()
      })))

    it.effect("a state is taken once: the second take is refused as unknown", () =>
      run(Effect.gen(function*() {
        const logins = yield* PendingLogins
        yield* logins.save(pendingLogin("s2", "alice"))
        yield* logins.take(s("s2"))
        const again = yield* Effect.flip(logins.take(s("s2")))
        expect(again._tag).toBe("SignInRefused")
        expect(again._tag === "SignInRefused" && again.reason).toBe("unknown")
      })))

    it.effect("concurrent takes of one state: exactly one succeeds", () =>
      run(Effect.gen(function*() {
        const logins = yield* PendingLogins
        yield* logins.save(pendingLogin("s3", "alice"))
        const exits = yield* Effect.all(Array.from({ length: 8 }, () => Effect.exit(logins.take(s("s3")))), {
          concurrency: "unbounded"
        })
        expect(exits.filter(Exit.isSuccess)).toHaveLength(1)
      })))

    it.effect("an unknown state is refused", () =>
      run(Effect.gen(function*() {
        const logins = yield* PendingLogins
        yield* logins.save(pendingLogin("s4", "alice"))
        const refused = yield* Effect.flip(logins.take(s("not-a-state")))
        expect(refused._tag === "SignInRefused" && refused.reason).toBe("unknown")
        // The other login is untouched.
        expect((yield* logins.take(s("s4"))).principal).toBe("alice")
      })))

    it.effect("a login past its expiry is refused as expired, and used up", () =>
      run(Effect.gen(function*() {
        const logins = yield* PendingLogins
        yield* logins.save(pendingLogin("s5", "alice", 10 * MINUTE))
        yield* logins.save(pendingLogin("s6", "alice", 10 * MINUTE))
        yield* TestClock.adjust("9 minutes")
        expect((yield* logins.take(s("s5"))).principal).toBe("alice")
        yield* TestClock.adjust("1 minute")
        const late = yield* Effect.flip(logins.take(s("s6")))
        expect(late._tag === "SignInRefused" && late.reason).toBe("expired")
        const again = yield* Effect.flip(logins.take(s("s6")))
        expect(again._tag === "SignInRefused" && again.reason).toBe("unknown")
      })))

    it.effect("saving sweeps expired logins away", () =>
      run(Effect.gen(function*() {
        const logins = yield* PendingLogins
        yield* logins.save(pendingLogin("old", "alice", 1 * MINUTE))
        yield* TestClock.adjust("2 minutes")
        yield* logins.save(pendingLogin("new", "alice", 20 * MINUTE))
        // Swept, not merely expired: the store no longer knows the state.
        const gone = yield* Effect.flip(logins.take(s("old")))
        expect(gone._tag === "SignInRefused" && gone.reason).toBe("unknown")
      })))

    it.effect("logins of different principals are kept apart", () =>
      run(Effect.gen(function*() {
        const logins = yield* PendingLogins
        yield* logins.save(pendingLogin("sa", "alice"))
        yield* logins.save(pendingLogin("sb", "bob"))
        expect((yield* logins.take(s("sb"))).principal).toBe("bob")
        expect((yield* logins.take(s("sa"))).principal).toBe("alice")
      })))
  })
