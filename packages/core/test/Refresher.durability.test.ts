/**
 * A login that survives what used to lose it (issue 13): a caller interrupted at every step
 * of a refresh, a save that fails after the provider rotated, the layer closing mid-refresh,
 * tokens shorter than the skew, odd `expires_in` values, and a refusal remembered.
 * Every time rule under TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Duration, Effect, Exit, Fiber, Layer, Logger, LogLevel, Option, Redacted, Scope, TestClock } from "effect"
import * as AuthConfig from "../src/AuthConfig.js"
import * as CredentialResolver from "../src/CredentialResolver.js"
import type { OAuthCredential, StoredCredential } from "../src/Domain.js"
import { StoreError } from "../src/Errors.js"
import { oidcDefaults, ProviderConfig } from "../src/Provider.js"
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
const key = { provider: "acme", account: "user@example.com" }

/** Everything but the store, which the caller provides (and may wrap). */
const services = (fake: Fake.FakeTokenEndpoint) =>
  Layer.mergeAll(Fake.registryLayer([acme]), AuthConfig.layerWith(), fake.layer)

const env = (fake: Fake.FakeTokenEndpoint, store: Layer.Layer<TokenStore.TokenStore> = TokenStore.layerMemory) =>
  Refresher.layer.pipe(Layer.provideMerge(Layer.mergeAll(store, services(fake))))

const seed = (credential: StoredCredential) => Effect.flatMap(TokenStore.TokenStore, (s) => s.set(credential))
const storedLogin = Effect.map(
  Effect.flatMap(TokenStore.TokenStore, (s) => s.get(key)),
  (o) => Option.getOrThrow(o) as OAuthCredential
)
const fresh = (options?: Refresher.FreshOptions) => Effect.flatMap(Refresher.Refresher, (r) => r.fresh(key, options))
const token = (c: OAuthCredential) => Redacted.value(c.tokens.accessToken)
const refreshTokenOf = (c: OAuthCredential) => c.tokens.refreshToken === undefined ? undefined : Redacted.value(c.tokens.refreshToken)
/** The refresh tokens the server was sent, in order. */
const sentRefreshTokens = (fake: Fake.FakeTokenEndpoint) => fake.requests.map((r) => r.body["refresh_token"])

/** A memory store whose `modify` runs `f`, then `beforeWrite` (once per call), then writes. */
const storeWith = (beforeWrite: (call: number) => Effect.Effect<void, StoreError>) =>
  Layer.effect(
    TokenStore.TokenStore,
    Effect.map(TokenStore.makeMemory, (inner): TokenStore.TokenStoreShape => {
      let calls = 0
      return {
        ...inner,
        modify: (k, f) => {
          const call = ++calls
          // f's answer is kept, the hook runs (it may fail: the write never happens), then the write.
          return Effect.flatMap(
            inner.modify(k, (current) => Effect.tap(f(current), () => beforeWrite(call))),
            (next) => Effect.succeed(next)
          )
        }
      }
    })
  )

describe("Refresher: a caller interrupted at each step of a refresh keeps the login", () => {
  it.effect("before sending (waiting for the store's lock): the refresh still happens once, and is saved", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const gated = Layer.effect(
        TokenStore.TokenStore,
        Effect.map(TokenStore.makeMemory, (inner): TokenStore.TokenStoreShape => ({
          ...inner,
          modify: (k, f) => Effect.zipRight(Deferred.await(gate), inner.modify(k, f))
        }))
      )
      yield* Effect.gen(function*() {
        yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
        const caller = yield* Effect.fork(fresh())
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.interrupt(caller)
        expect(fake.tokenCalls()).toBe(0)
        yield* Deferred.succeed(gate, undefined)
        const next = yield* fresh()
        expect(token(next)).toBe("at-1")
        expect(token(yield* storedLogin)).toBe("at-1")
        expect(sentRefreshTokens(fake)).toEqual(["rt-0"])
      }).pipe(Effect.provide(env(fake, gated)))
    })
  })

  it.effect("after the server rotated, its answer pending: the answer is saved; the next fresh uses it with no request", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      fake.fault({ _tag: "AnswerAfter", duration: Duration.seconds(10) })
      const caller = yield* Effect.fork(fresh())
      yield* TestClock.adjust(Duration.seconds(1))
      // The server has rotated: rt-0 is spent, rt-1 is the login now.
      expect(fake.issued()).toBe(1)
      yield* Fiber.interrupt(caller)
      yield* TestClock.adjust(Duration.seconds(9))
      const saved = yield* storedLogin
      expect(token(saved)).toBe("at-1")
      expect(refreshTokenOf(saved)).toBe("rt-1")
      expect(token(yield* fresh())).toBe("at-1")
      // And the refresh after it spends rt-1, never rt-0 again.
      yield* TestClock.adjust(Duration.hours(1))
      expect(token(yield* fresh())).toBe("at-2")
      expect(sentRefreshTokens(fake)).toEqual(["rt-0", "rt-1"])
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("during the save: the save completes", () => {
    const fake = Fake.make()
    // The write of the refreshed login takes 5 s (a slow disk).
    const slow = storeWith(() => Effect.sleep(Duration.seconds(5)))
    return Effect.gen(function*() {
      yield* Effect.flatMap(TokenStore.TokenStore, (s) =>
        // Seeding through `set` (no modify): the slow write only hits the refresh.
        s.set(Fake.login({ provider: "acme", expiresAt: 0 })))
      const caller = yield* Effect.fork(fresh())
      yield* TestClock.adjust(Duration.seconds(1))
      expect(fake.issued()).toBe(1)
      expect(token(yield* storedLogin)).toBe("at-0")
      yield* Fiber.interrupt(caller)
      yield* TestClock.adjust(Duration.seconds(4))
      expect(token(yield* storedLogin)).toBe("at-1")
      expect(token(yield* fresh())).toBe("at-1")
      expect(sentRefreshTokens(fake)).toEqual(["rt-0"])
    }).pipe(Effect.provide(env(fake, slow)))
  })

  it.effect("waiters of an interrupted leader get the saved result, with one request", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      fake.fault({ _tag: "AnswerAfter", duration: Duration.seconds(10) })
      const leader = yield* Effect.fork(fresh())
      yield* TestClock.adjust(Duration.seconds(1))
      const waiters = yield* Effect.fork(Effect.all(Array.from({ length: 5 }, () => fresh({ force: true })), { concurrency: "unbounded" }))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.interrupt(leader)
      yield* TestClock.adjust(Duration.seconds(8))
      const got = yield* Fiber.join(waiters)
      expect(new Set(got.map(token))).toEqual(new Set(["at-1"]))
      expect(token(yield* storedLogin)).toBe("at-1")
      expect(fake.tokenCalls()).toBe(1)
    }).pipe(Effect.provide(env(fake)))
  })
})

describe("Refresher: the layer closing (the program ends) mid-refresh", () => {
  it.effect("a refresh already sent is awaited and saved before the layer is gone", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      const store = yield* TokenStore.makeMemory
      yield* store.set(Fake.login({ provider: "acme", expiresAt: 0 }))
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Refresher.layer.pipe(Layer.provide(Layer.mergeAll(Layer.succeed(TokenStore.TokenStore, store), services(fake)))),
        scope
      )
      fake.fault({ _tag: "AnswerAfter", duration: Duration.seconds(10) })
      const caller = yield* Effect.fork(Effect.provide(fresh(), context))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(fake.issued()).toBe(1)
      // Ctrl-C: the caller is interrupted, then the layers close.
      yield* Fiber.interrupt(caller)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust(Duration.seconds(5))
      expect(closing.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.seconds(5))
      yield* Fiber.join(closing)
      const saved = Option.getOrThrow(yield* store.get(key)) as OAuthCredential
      expect(token(saved)).toBe("at-1")
      expect(refreshTokenOf(saved)).toBe("rt-1")
    })
  })

  it.effect("a refresh not yet sent is stopped: nothing is sent after the layer closes", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const inner = yield* TokenStore.makeMemory
      yield* inner.set(Fake.login({ provider: "acme", expiresAt: 0 }))
      const store: TokenStore.TokenStoreShape = { ...inner, modify: (k, f) => Effect.zipRight(Deferred.await(gate), inner.modify(k, f)) }
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Refresher.layer.pipe(Layer.provide(Layer.mergeAll(Layer.succeed(TokenStore.TokenStore, store), services(fake)))),
        scope
      )
      const caller = yield* Effect.fork(Effect.provide(fresh(), context))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.interrupt(caller)
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.succeed(gate, undefined)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(fake.tokenCalls()).toBe(0)
      expect(token(Option.getOrThrow(yield* inner.get(key)) as OAuthCredential)).toBe("at-0")
    })
  })
})

describe("Refresher: a save that fails after the provider rotated", () => {
  it.effect("keeps working with the new tokens, never sends the old refresh token again, and the retry saves them", () => {
    const fake = Fake.make()
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel === LogLevel.Warning) warnings.push(String(message))
    })
    // The first write of a refresh fails (ENOSPC: the lock fit, the temp file did not).
    const failing = storeWith((call) =>
      call === 1 ? Effect.fail(new StoreError({ path: "/home/u/.agent-auth/credentials.json", reason: "ENOSPC" })) : Effect.void
    )
    return Effect.gen(function*() {
      yield* Effect.flatMap(TokenStore.TokenStore, (s) => s.set(Fake.login({ provider: "acme", expiresAt: 0 })))
      const first = yield* fresh()
      expect(token(first)).toBe("at-1")
      expect(warnings.some((w) => w.includes("could not be saved") && w.includes("ENOSPC"))).toBe(true)
      expect(warnings.join("\n")).not.toContain("rt-1")
      // Not saved yet; this process keeps using the new tokens, with no request.
      expect(token(yield* storedLogin)).toBe("at-0")
      expect(token(yield* fresh())).toBe("at-1")
      expect(fake.tokenCalls()).toBe(1)
      // The retry (1 s later) saves them.
      yield* TestClock.adjust(Duration.seconds(1))
      const saved = yield* storedLogin
      expect(token(saved)).toBe("at-1")
      expect(refreshTokenOf(saved)).toBe("rt-1")
      // The next refresh spends rt-1.
      yield* TestClock.adjust(Duration.hours(1))
      expect(token(yield* fresh())).toBe("at-2")
      expect(sentRefreshTokens(fake)).toEqual(["rt-0", "rt-1"])
    }).pipe(
      Effect.provide(env(fake, failing)),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  })

  it.effect("a refresh due before the retry saved refreshes from the unsaved tokens, and its save stores the newest", () => {
    const fake = Fake.make({ expiresIn: 60 })
    const failing = storeWith((call) => call === 1 ? Effect.fail(new StoreError({ path: "p", reason: "EIO" })) : Effect.void)
    return Effect.gen(function*() {
      yield* Effect.flatMap(TokenStore.TokenStore, (s) => s.set(Fake.login({ provider: "acme", expiresAt: 0 })))
      expect(token(yield* fresh())).toBe("at-1")
      // Forced before the retry ran: rt-1 (unsaved) is what is sent, not rt-0.
      expect(token(yield* fresh({ force: true }))).toBe("at-2")
      expect(sentRefreshTokens(fake)).toEqual(["rt-0", "rt-1"])
      expect(refreshTokenOf(yield* storedLogin)).toBe("rt-2")
      yield* TestClock.adjust(Duration.seconds(1))
      expect(refreshTokenOf(yield* storedLogin)).toBe("rt-2")
    }).pipe(Effect.provide(env(fake, failing)))
  })
})

describe("Refresher: tokens shorter than the skew", () => {
  it.effect("60-second tokens, 100 resolves over 45 s: no refresh before half-life, then exactly one", () => {
    const fake = Fake.make({ expiresIn: 60 })
    const layer = CredentialResolver.layer.pipe(
      Layer.provideMerge(Refresher.layer),
      Layer.provideMerge(Layer.mergeAll(TokenStore.layerMemory, services(fake)))
    )
    return Effect.gen(function*() {
      // Obtained at 0, expiring at 60 s; the skew is 5 minutes.
      yield* seed(Fake.login({ provider: "acme", expiresAt: 60_000, obtainedAt: 0 }))
      const resolver = yield* CredentialResolver.CredentialResolver
      const seen: Array<string> = []
      for (let i = 0; i < 100; i++) {
        const c = yield* resolver.resolve("acme")
        seen.push(Redacted.value(c._tag === "Bearer" ? c.token : c.key))
        // 100 resolves spread over 45 s.
        yield* TestClock.adjust(Duration.millis(450))
        const now = (i + 1) * 450
        if (now < 30_000) expect(fake.tokenCalls()).toBe(0)
      }
      expect(fake.tokenCalls()).toBe(1)
      // Resolves before 30 s got at-0, those after got at-1.
      expect(seen.slice(0, 67).every((t) => t === "at-0")).toBe(true)
      expect(seen.slice(67).every((t) => t === "at-1")).toBe(true)
    }).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
      Effect.provide(layer)
    )
  })

  it("the margin is the skew, capped at half the lifetime", () => {
    const login = (expiresAt: number, obtainedAt: number) => Fake.login({ provider: "acme", expiresAt, obtainedAt })
    expect(Refresher.refreshMarginMillis(login(3_600_000, 0), 300_000)).toBe(300_000)
    expect(Refresher.refreshMarginMillis(login(300_000, 0), 300_000)).toBe(150_000)
    expect(Refresher.refreshMarginMillis(login(60_000, 0), 300_000)).toBe(30_000)
    // A login stored with an expiry before it was obtained (a clock that jumped): due at expiry.
    expect(Refresher.refreshMarginMillis(login(0, 60_000), 300_000)).toBe(0)
    expect(Refresher.refreshDueAt(login(60_000, 0), 300_000)).toBe(30_000)
  })
})

describe("Refresher: odd expires_in values", () => {
  const cases: ReadonlyArray<{ readonly json: string | null; readonly expiresInMs: number | undefined; readonly logged: string }> = [
    { json: "0", expiresInMs: undefined, logged: "expires_in 0 is not within (0, 10 years]" },
    { json: "-5", expiresInMs: undefined, logged: "expires_in -5 is not within (0, 10 years]" },
    { json: "1e20", expiresInMs: undefined, logged: "expires_in 100000000000000000000 is not within (0, 10 years]" },
    { json: "1e309", expiresInMs: undefined, logged: "expires_in Infinity is not within (0, 10 years]" },
    { json: "\"3600\"", expiresInMs: 3_600_000, logged: "expires_in was the string \"3600\": taken as 3600 s" },
    { json: "\"soon\"", expiresInMs: undefined, logged: "expires_in is a string, not a number" },
    { json: "true", expiresInMs: undefined, logged: "expires_in is a boolean, not a number" },
    { json: null, expiresInMs: undefined, logged: "no expires_in (and no JWT exp): expiry unknown" }
  ]
  for (const c of cases) {
    it.effect(`expires_in ${c.json ?? "absent"}: stored with ${c.expiresInMs === undefined ? "unknown" : "a sane"} expiry, no defect, logged`, () => {
      const fake = Fake.make({ expiresInJson: c.json })
      const debug: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel === LogLevel.Debug) debug.push(String(message))
      })
      return Effect.gen(function*() {
        yield* TestClock.setTime(1_000_000)
        yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
        const got = yield* fresh()
        expect(token(got)).toBe("at-1")
        const saved = yield* storedLogin
        expect(refreshTokenOf(saved)).toBe("rt-1")
        expect(saved.tokens.expiresAt?.epochMillis).toBe(c.expiresInMs === undefined ? undefined : 1_000_000 + c.expiresInMs)
        expect(debug.some((line) => line.includes(c.logged)), debug.join("\n")).toBe(true)
        // Neither an unknown expiry nor an hour's is due 10 minutes later: no refresh storm.
        yield* TestClock.adjust(Duration.minutes(10))
        yield* fresh()
        expect(fake.tokenCalls()).toBe(1)
      }).pipe(
        Effect.provide(env(fake)),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
    })
  }
})

describe("Refresher: a refusal is remembered", () => {
  it.effect("after invalid_grant the next fresh fails at once with no request; a new login clears it", () => {
    const fake = Fake.make({ validRefreshTokens: ["rt-current"] })
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0, refreshToken: "rt-spent" }))
      const first = yield* Effect.flip(fresh())
      expect(first._tag).toBe("ReauthRequired")
      expect(fake.tokenCalls()).toBe(1)
      expect((yield* storedLogin).refusal?.reason).toBe("invalid_grant")
      for (const options of [{}, { force: true }]) {
        const again = yield* Effect.flip(fresh(options))
        expect(again._tag).toBe("ReauthRequired")
        if (again._tag === "ReauthRequired") expect(again.reason).toBe("invalid_grant")
      }
      expect(fake.tokenCalls()).toBe(1)
      // A new login (what `agent-auth login` stores) has no refusal.
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0, refreshToken: "rt-current" }))
      expect(token(yield* fresh())).toBe("at-1")
      expect((yield* storedLogin).refusal).toBeUndefined()
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a transient failure is not a refusal: nothing is remembered", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", expiresAt: 0 }))
      fake.fault(...Array.from({ length: 5 }, () => ({ _tag: "Status" as const, status: 503 })))
      const fiber = yield* Effect.fork(Effect.flip(fresh()))
      yield* TestClock.adjust(Duration.minutes(5))
      expect((yield* Fiber.join(fiber))._tag).toBe("TokenEndpointError")
      expect((yield* storedLogin).refusal).toBeUndefined()
      expect(token(yield* fresh())).toBe("at-1")
    }).pipe(Effect.provide(env(fake)))
  })
})
