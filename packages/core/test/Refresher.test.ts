import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Layer, Option, Redacted, TestClock } from "effect"
import * as AuthConfig from "../src/AuthConfig.js"
import { ApiKeyCredential, type OAuthCredential } from "../src/Domain.js"
import { oidcDefaults, openai, ProviderConfig } from "../src/Provider.js"
import * as Refresher from "../src/Refresher.js"
import * as TokenStore from "../src/TokenStore.js"
import * as Fake from "./support/fakeTokenEndpoint.js"

const acme = ProviderConfig.make({
  ...oidcDefaults,
  id: "acme",
  displayName: "Acme",
  issuer: Fake.ISSUER,
  clientId: "agent-cli",
  apiBaseUrl: "https://llm.acme.example/v1"
})
const openaiFake = new ProviderConfig({ ...openai, issuer: Fake.ISSUER })
const key = { provider: "acme", account: "user@example.com" }
const MIN = 60_000
const HOUR = 60 * MIN

const env = (
  fake: Fake.FakeTokenEndpoint,
  store: Layer.Layer<TokenStore.TokenStore> = TokenStore.layerMemory
) =>
  Refresher.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(store, Fake.registryLayer([acme, openaiFake]), AuthConfig.layerWith(), fake.layer)
    )
  )

const seed = (credential: OAuthCredential | ApiKeyCredential) =>
  Effect.flatMap(TokenStore.TokenStore, (s) => s.set(credential))

const stored = Effect.flatMap(TokenStore.TokenStore, (s) => s.get(key))

const fresh = (options?: Refresher.FreshOptions) =>
  Effect.flatMap(Refresher.Refresher, (r) => r.fresh(key, options))

const token = (c: OAuthCredential) => Redacted.value(c.tokens.accessToken)
/** The login is still stored, tokens untouched, with the provider's refusal remembered on it. */
const expectKeptWithRefusal = (after: OAuthCredential | ApiKeyCredential, before: OAuthCredential, reason: string) => {
  expect(after._tag).toBe("OAuthCredential")
  const login = after as OAuthCredential
  expect(token(login)).toBe(token(before))
  expect(refreshTokenOf(login)).toBe(refreshTokenOf(before))
  expect(login.refusal?.reason).toBe(reason)
}

const refreshTokenOf = (c: OAuthCredential) => c.tokens.refreshToken === undefined ? undefined : Redacted.value(c.tokens.refreshToken)

describe("Refresher", () => {
  it.effect("returns the stored login untouched while more than the skew is left", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      const original = Fake.login({ provider: "acme", expiresAt: HOUR })
      yield* seed(original)
      yield* TestClock.adjust(Duration.minutes(30))
      const got = yield* fresh()
      expect(got).toBe(original)
      expect(fake.tokenCalls()).toBe(0)
    }).pipe(Effect.provide(env(fake)))
  })

  // Convention: fresh while expiresAt − now > skew; at exactly expiresAt − skew it refreshes.
  it.effect("refreshes exactly at expiresAt − 5 min, not 1 ms before", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: HOUR }))
      yield* TestClock.adjust(Duration.millis(55 * MIN - 1))
      expect(token(yield* fresh())).toBe("at-0")
      expect(fake.tokenCalls()).toBe(0)
      yield* TestClock.adjust(Duration.millis(1))
      const refreshed = yield* fresh()
      expect(token(refreshed)).toBe("at-1")
      expect(fake.tokenCalls()).toBe(1)
      // The new token's expiry counts from the refresh, and it is what the store now holds.
      expect(refreshed.tokens.expiresAt?.epochMillis).toBe(55 * MIN + HOUR)
      expect(refreshed.refreshedAt?.epochMillis).toBe(55 * MIN)
      expect(refreshed.claims.email).toBe("user@example.com")
      expect(Option.getOrThrow(yield* stored)).toBe(refreshed)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a custom minValidity moves the boundary", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: HOUR }))
      yield* TestClock.adjust(Duration.minutes(30))
      expect(token(yield* fresh({ minValidity: Duration.minutes(29) }))).toBe("at-0")
      expect(token(yield* fresh({ minValidity: Duration.minutes(30) }))).toBe("at-1")
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a token without expiry counts as valid; force refreshes anyway", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme" }))
      yield* TestClock.adjust(Duration.days(400))
      expect(token(yield* fresh())).toBe("at-0")
      expect(fake.tokenCalls()).toBe(0)
      expect(token(yield* fresh({ force: true }))).toBe("at-1")
      expect(fake.tokenCalls()).toBe(1)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("1,000 concurrent callers on an expired token make exactly one token call and share its result", () => {
    const fake = Fake.make()
    // Counts lock takings: in-process waiters must share the one refresh, not queue on the store's lock.
    let modifies = 0
    const counting = Layer.effect(
      TokenStore.TokenStore,
      Effect.map(TokenStore.makeMemory, (inner): TokenStore.TokenStoreShape => ({
        ...inner,
        modify: (k, f) => Effect.suspend(() => {
          modifies += 1
          return inner.modify(k, f)
        })
      }))
    )
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      // Hold the token call open so every fiber arrives while it is in flight.
      fake.fault({ _tag: "Delay", duration: Duration.seconds(2) })
      const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 1000 }, () => fresh()), { concurrency: "unbounded" }))
      yield* TestClock.adjust(Duration.seconds(2))
      const results = yield* Fiber.join(fiber)
      expect(fake.tokenCalls()).toBe(1)
      expect(results).toHaveLength(1000)
      expect(new Set(results.map(token))).toEqual(new Set(["at-1"]))
      expect(token(Option.getOrThrow(yield* stored) as OAuthCredential)).toBe("at-1")
      expect(modifies).toBe(1)
    }).pipe(Effect.provide(env(fake, counting)))
  })

  it.effect("callers after a finished refresh see the new token without another call", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      const first = yield* Effect.all(Array.from({ length: 50 }, () => fresh()), { concurrency: "unbounded" })
      const second = yield* Effect.all(Array.from({ length: 50 }, () => fresh()), { concurrency: "unbounded" })
      expect(fake.tokenCalls()).toBe(1)
      expect(new Set([...first, ...second].map(token))).toEqual(new Set(["at-1"]))
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("an interrupted leader's refresh goes on: its waiter gets the result, and the next caller uses it", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      fake.fault({ _tag: "Delay", duration: Duration.seconds(10) })
      const leader = yield* Effect.fork(fresh())
      yield* TestClock.adjust(Duration.seconds(1))
      expect(fake.tokenCalls()).toBe(1)
      const waiter = yield* Effect.fork(fresh())
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.interrupt(leader)
      yield* TestClock.adjust(Duration.seconds(8))
      expect(token(yield* Fiber.join(waiter))).toBe("at-1")
      expect(token(yield* fresh())).toBe("at-1")
      // One request: nobody sent the old refresh token a second time.
      expect(fake.tokenCalls()).toBe(1)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("an interrupted leader with no waiter still saves its refresh; the next caller uses it", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      fake.fault({ _tag: "Delay", duration: Duration.seconds(10) })
      const leader = yield* Effect.fork(fresh())
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.interrupt(leader)
      yield* TestClock.adjust(Duration.seconds(9))
      expect(token(Option.getOrThrow(yield* stored) as OAuthCredential)).toBe("at-1")
      expect(token(yield* fresh())).toBe("at-1")
      expect(fake.tokenCalls()).toBe(1)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("transient faults are retried within the bound", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      fake.fault(
        { _tag: "Status", status: 503 },
        { _tag: "NetworkError" },
        { _tag: "Status", status: 500, error: "server_error" },
        { _tag: "Status", status: 502 }
      )
      const fiber = yield* Effect.fork(fresh())
      yield* TestClock.adjust(Duration.minutes(1))
      expect(token(yield* Fiber.join(fiber))).toBe("at-1")
      expect(fake.tokenCalls()).toBe(5)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("transient faults past the bound surface the last error and leave the store untouched", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      const before = Fake.login({ provider: "acme", expiresAt: 0 })
      yield* seed(before)
      fake.fault(
        { _tag: "NetworkError" },
        { _tag: "Status", status: 500 },
        { _tag: "Status", status: 500 },
        { _tag: "Status", status: 500 },
        { _tag: "Status", status: 503 },
        { _tag: "Status", status: 500 }
      )
      const fiber = yield* Effect.fork(Effect.either(fresh()))
      // Not all retries have happened after the first backoff.
      yield* TestClock.adjust(Duration.millis(300))
      expect(fake.tokenCalls()).toBe(1)
      yield* TestClock.adjust(Duration.minutes(5))
      const result = yield* Fiber.join(fiber)
      // 1 attempt + 4 retries; the sixth scripted fault was never reached.
      expect(fake.tokenCalls()).toBe(5)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left._tag).toBe("TokenEndpointError")
        if (result.left._tag === "TokenEndpointError") expect(result.left.status).toBe(503)
      }
      expect(Option.getOrThrow(yield* stored)).toBe(before)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a 429 with Retry-After is not retried before the server said", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      fake.fault({ _tag: "Status", status: 429, headers: { "retry-after": "30" } })
      const fiber = yield* Effect.fork(fresh())
      yield* TestClock.adjust(Duration.millis(29_999))
      expect(fake.tokenCalls()).toBe(1)
      yield* TestClock.adjust(Duration.millis(1))
      expect(token(yield* Fiber.join(fiber))).toBe("at-1")
      expect(fake.tokenCalls()).toBe(2)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a replayed refresh token gets ReauthRequired naming the login command; the login stays stored, refusal remembered", () => {
    const fake = Fake.make({ validRefreshTokens: ["rt-current"] })
    return Effect.gen(function*() {
      const before = Fake.login({ provider: "acme", expiresAt: 0, refreshToken: "rt-replayed" })
      yield* seed(before)
      const error = yield* Effect.flip(fresh())
      expect(error._tag).toBe("ReauthRequired")
      if (error._tag === "ReauthRequired") {
        expect(error.reason).toBe("invalid_grant")
        expect(error.account).toBe("user@example.com")
      }
      expect(error.message).toContain("agent-auth login acme")
      expect(error.message).not.toContain("rt-replayed")
      expect(fake.tokenCalls()).toBe(1)
      expectKeptWithRefusal(Option.getOrThrow(yield* stored), before, "invalid_grant")
    }).pipe(Effect.provide(env(fake)))
  })

  for (
    const [status, code, reason] of [
      [400, "refresh_token_reused", "refresh_token_reused"],
      [400, "refresh_token_expired", "refresh_token_expired"],
      [401, "refresh_token_invalidated", "refresh_token_invalidated"],
      [401, "invalid_token", "invalid_token"],
      [401, undefined, "HTTP 401"]
    ] as const
  ) {
    it.effect(`HTTP ${status} ${code ?? "(no code)"} → ReauthRequired (${reason}), not retried, nothing deleted`, () => {
      const fake = Fake.make()
      return Effect.gen(function*() {
        const before = Fake.login({ provider: "acme", expiresAt: 0 })
        yield* seed(before)
        fake.fault({ _tag: "Status", status, ...(code === undefined ? {} : { error: code }) })
        const error = yield* Effect.flip(fresh())
        expect(error._tag).toBe("ReauthRequired")
        if (error._tag === "ReauthRequired") expect(error.reason).toBe(reason)
        expect(fake.tokenCalls()).toBe(1)
        expectKeptWithRefusal(Option.getOrThrow(yield* stored), before, reason)
      }).pipe(Effect.provide(env(fake)))
    })
  }

  it.effect("another 400 (invalid_client) is a TokenEndpointError, not a re-login", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      fake.fault({ _tag: "Status", status: 400, error: "invalid_client" })
      const error = yield* Effect.flip(fresh())
      expect(error._tag).toBe("TokenEndpointError")
      expect(fake.tokenCalls()).toBe(1)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("keeps the old refresh token when the answer carries none", () => {
    const fake = Fake.make({ rotate: false })
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      const got = yield* fresh()
      expect(token(got)).toBe("at-1")
      expect(refreshTokenOf(got)).toBe("rt-0")
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("stores the rotated refresh token and uses it on the next refresh", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      expect(refreshTokenOf(yield* fresh())).toBe("rt-1")
      yield* TestClock.adjust(Duration.hours(1))
      expect(token(yield* fresh())).toBe("at-2")
      expect(fake.requests.map((r) => r.body["refresh_token"])).toEqual(["rt-0", "rt-1"])
    }).pipe(Effect.provide(env(fake)))
  })

  /** A store where another process writes `byOther` just as we take the lock. */
  const racingStore = (byOther: ReturnType<typeof Fake.login>) =>
    Layer.effect(
      TokenStore.TokenStore,
      Effect.map(TokenStore.makeMemory, (inner): TokenStore.TokenStoreShape => {
        let first = true
        return {
          ...inner,
          modify: (k, f) =>
            Effect.suspend(() => {
              if (!first) return inner.modify(k, f)
              first = false
              return Effect.zipRight(inner.set(byOther), inner.modify(k, f))
            })
        }
      })
    )

  it.effect("skips the call when another process refreshed between the decision and the lock", () => {
    const fake = Fake.make()
    const byOther = Fake.login({ provider: "acme", accessToken: "at-other", refreshToken: "rt-other", expiresAt: 2 * HOUR })
    const racing = racingStore(byOther)
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      const got = yield* fresh()
      expect(got).toBe(byOther)
      expect(fake.tokenCalls()).toBe(0)
      expect(Option.getOrThrow(yield* stored)).toBe(byOther)
    }).pipe(Effect.provide(env(fake, racing)))
  })

  it.effect("a forced refresh also yields to another process's newer token", () => {
    const fake = Fake.make()
    const byOther = Fake.login({ provider: "acme", accessToken: "at-other", refreshToken: "rt-other", expiresAt: 2 * HOUR })
    const racing = racingStore(byOther)
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: HOUR }))
      expect(yield* fresh({ force: true })).toBe(byOther)
      expect(fake.tokenCalls()).toBe(0)
    }).pipe(Effect.provide(env(fake, racing)))
  })

  it.effect("a forced refresh yields to a newer token even when it has less than the skew left", () => {
    const fake = Fake.make()
    // A server whose refreshed tokens live 2 minutes: less than the 5-minute skew, but unexpired.
    const byOther = Fake.login({ provider: "acme", accessToken: "at-other", refreshToken: "rt-other", expiresAt: 2 * 60_000 })
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: HOUR }))
      expect(yield* fresh({ force: true })).toBe(byOther)
      expect(fake.tokenCalls()).toBe(0)
    }).pipe(Effect.provide(env(fake, racingStore(byOther))))
  })

  it.effect("sends the refresh grant as a form for OAuth providers", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      yield* fresh()
      expect(fake.requests).toEqual([{
        path: "/token",
        format: "form",
        body: { client_id: "agent-cli", grant_type: "refresh_token", refresh_token: "rt-0" }
      }])
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("sends OpenAI's JSON body when refreshFormat is json", () => {
    const fake = Fake.make()
    const openaiKey = { provider: "openai", account: "user@example.com" }
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "openai", expiresAt: 0 }))
      const got = yield* Effect.flatMap(Refresher.Refresher, (r) => r.fresh(openaiKey))
      expect(token(got)).toBe("at-1")
      expect(fake.requests).toEqual([{
        path: "/token",
        format: "json",
        body: { client_id: openai.clientId, grant_type: "refresh_token", refresh_token: "rt-0" }
      }])
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a due login without a refresh token needs a new login", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      const before = Fake.login({ provider: "acme", expiresAt: 0, refreshToken: null })
      yield* seed(before)
      const error = yield* Effect.flip(fresh())
      expect(error._tag).toBe("ReauthRequired")
      if (error._tag === "ReauthRequired") expect(error.reason).toBe("no refresh token")
      expect(fake.tokenCalls()).toBe(0)
      expect(Option.getOrThrow(yield* stored)).toBe(before)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("no login, or only an API key under the key, is NotLoggedIn", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      const none = yield* Effect.flip(fresh())
      expect(none._tag).toBe("NotLoggedIn")
      expect(none.message).toContain("agent-auth login acme")
      yield* seed(ApiKeyCredential.make({ provider: "acme", account: key.account, key: Redacted.make("k"), obtainedAt: Fake.login({ provider: "acme" }).obtainedAt }))
      expect((yield* Effect.flip(fresh()))._tag).toBe("NotLoggedIn")
      const openaiNone = yield* Effect.flip(Effect.flatMap(Refresher.Refresher, (r) => r.fresh({ provider: "openai", account: "x" })))
      expect(openaiNone.message).toContain("OPENAI_API_KEY")
      expect(fake.tokenCalls()).toBe(0)
    }).pipe(Effect.provide(env(fake)))
  })
})
