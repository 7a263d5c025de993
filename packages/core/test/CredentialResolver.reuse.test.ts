/**
 * The hot path: `resolve` reuses its last answer while nothing it was derived from changed
 * (`MakeOptions.revalidateAfter`), and what ends the reuse does so at the right moment.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Context,
  ConfigProvider,
  Duration,
  Effect,
  Fiber,
  Layer,
  List,
  Logger,
  LogLevel,
  Redacted,
  Ref,
  TestClock
} from "effect"
import * as AuthConfig from "../src/AuthConfig.js"
import type { Credential, StoredCredential } from "../src/Domain.js"
import * as CredentialResolver from "../src/CredentialResolver.js"
import { oidcDefaults, openai, ProviderConfig } from "../src/Provider.js"
import * as Refresher from "../src/Refresher.js"
import * as TokenStore from "../src/TokenStore.js"
import * as Fake from "./support/fakeTokenEndpoint.js"

const MIN = 60_000
const HOUR = 60 * MIN
const SKEW = 5 * MIN

const acme = ProviderConfig.make({ ...oidcDefaults, id: "acme", displayName: "Acme", issuer: Fake.ISSUER, clientId: "c" })
const openaiAuto = new ProviderConfig({ ...openai, issuer: Fake.ISSUER, mode: "auto" })

/** The memory store, counting the reads that reach it. */
const countingStore = Effect.map(TokenStore.makeMemory, (inner) => {
  let reads = 0
  const store: TokenStore.TokenStoreShape = {
    ...inner,
    get: (key) => Effect.suspend(() => (reads++, inner.get(key))),
    list: (provider) => Effect.suspend(() => (reads++, inner.list(provider)))
  }
  return { store, reads: () => reads }
})

interface Setup {
  readonly stored?: ReadonlyArray<StoredCredential>
  readonly fake?: Fake.FakeTokenEndpoint
  readonly options?: CredentialResolver.MakeOptions
}

/** The resolver over a counting store and the fake token endpoint; `env` is a live, mutable environment. */
const make = (setup: Setup = {}) =>
  Effect.gen(function*() {
    const counting = yield* countingStore
    const fake = setup.fake ?? Fake.make()
    const base = Layer.mergeAll(
      Layer.succeed(TokenStore.TokenStore, counting.store),
      Fake.registryLayer([acme, openaiAuto]),
      AuthConfig.layerWith({ home: "/home/someone/.agent-auth" }),
      fake.layer
    )
    // Built in the test's scope: the Refresher stops refreshing once its layer is closed.
    const context = yield* Layer.build(
      CredentialResolver.layerWith(setup.options ?? {}).pipe(
        Layer.provideMerge(Refresher.layer),
        Layer.provideMerge(base)
      )
    )
    const resolver = Context.get(context, CredentialResolver.CredentialResolver)
    for (const c of setup.stored ?? []) yield* counting.store.set(c)
    return { resolver, store: counting.store, reads: counting.reads, fake }
  })

/** A mutable environment, read through Effect's ConfigProvider (never the real one). */
const mutableEnv = (initial: Record<string, string> = {}) => {
  const map = new Map(Object.entries(initial))
  // `fromMap` copies its map: a provider that reads the map as it is at each load.
  const provider = ConfigProvider.make({
    load: (config) => ConfigProvider.fromMap(map).load(config),
    flattened: ConfigProvider.fromMap(map).flattened
  })
  return { map, provider }
}

const secret = (c: Credential) => Redacted.value(c._tag === "ApiKey" ? c.key : c.token)
const login = (token: string, expiresAt = HOUR, provider = "acme") =>
  Fake.login({ provider, account: "me", accessToken: token, expiresAt })

describe("CredentialResolver: reusing the last answer", () => {
  it.scoped("a held answer reads no store, through yield* and through flatMap alike", () =>
    Effect.gen(function*() {
      const { reads, resolver } = yield* make({ stored: [login("at-a")] })
      const first = yield* resolver.resolve("acme")
      const after = reads()
      expect(after).toBe(1)
      for (let i = 0; i < 50; i++) {
        expect(yield* resolver.resolve("acme")).toBe(first)
        expect(yield* Effect.flatMap(resolver.resolve("acme"), Effect.succeed)).toBe(first)
        expect(yield* Effect.map(resolver.resolve("acme", {}), secret)).toBe("at-a")
      }
      expect(reads()).toBe(after)
    }))

  it.scoped("a write through the store is seen by the very next call", () =>
    Effect.gen(function*() {
      const { resolver, store } = yield* make({ stored: [login("at-a")] })
      expect(secret(yield* resolver.resolve("acme"))).toBe("at-a")
      yield* store.set(login("at-b"))
      expect(secret(yield* resolver.resolve("acme"))).toBe("at-b")
      yield* store.remove({ provider: "acme", account: "me" })
      const gone = yield* Effect.flip(resolver.resolve("acme"))
      expect(gone._tag).toBe("NotLoggedIn")
    }))

  it.scoped("the refresh time ends it: reused 1 ms before expiresAt − skew, refreshed at it", () =>
    Effect.gen(function*() {
      const fake = Fake.make({ expiresIn: 3600 })
      const { reads, resolver } = yield* make({ stored: [login("at-0")], fake, options: { revalidateAfter: Duration.hours(2) } })
      expect(secret(yield* resolver.resolve("acme"))).toBe("at-0")
      yield* TestClock.adjust(Duration.millis(HOUR - SKEW - 1))
      const before = reads()
      expect(secret(yield* resolver.resolve("acme"))).toBe("at-0")
      expect(reads()).toBe(before)
      expect(fake.tokenCalls()).toBe(0)
      yield* TestClock.adjust(Duration.millis(1))
      expect(secret(yield* resolver.resolve("acme"))).toBe("at-1")
      expect(fake.tokenCalls()).toBe(1)
    }))

  it.scoped("what only the outside world changes (the environment) is seen within revalidateAfter, not before", () =>
    Effect.gen(function*() {
      const env = mutableEnv()
      const { resolver } = yield* make({ stored: [login("at-chatgpt", 10 * HOUR, "openai")] })
      const call = resolver.resolve("openai").pipe(Effect.map(secret), Effect.withConfigProvider(env.provider))
      expect(yield* call).toBe("at-chatgpt")
      env.map.set("OPENAI_API_KEY", "sk-later")
      yield* TestClock.adjust(Duration.millis(999))
      expect(yield* call).toBe("at-chatgpt")
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* call).toBe("sk-later")
    }))

  it.scoped("revalidateAfter is configurable; zero reads the sources on every call", () =>
    Effect.gen(function*() {
      const { reads, resolver } = yield* make({ stored: [login("at-a")], options: { revalidateAfter: 0 } })
      for (let i = 0; i < 5; i++) yield* resolver.resolve("acme")
      expect(reads()).toBe(5)
    }))

  it.scoped("a failure is never remembered: a variable set after NotLoggedIn is found at once", () =>
    Effect.gen(function*() {
      const env = mutableEnv()
      const { resolver } = yield* make()
      const call = resolver.resolve("openai").pipe(Effect.withConfigProvider(env.provider))
      expect((yield* Effect.flip(call))._tag).toBe("NotLoggedIn")
      env.map.set("OPENAI_API_KEY", "sk-now")
      expect(secret(yield* call)).toBe("sk-now")
    }))

  it.scoped("a caller under another ConfigProvider is not given the first one's answer", () =>
    Effect.gen(function*() {
      const { resolver } = yield* make()
      const a = mutableEnv({ OPENAI_API_KEY: "sk-a" })
      const b = mutableEnv({ OPENAI_API_KEY: "sk-b" })
      expect(secret(yield* resolver.resolve("openai").pipe(Effect.withConfigProvider(a.provider)))).toBe("sk-a")
      expect(secret(yield* resolver.resolve("openai").pipe(Effect.withConfigProvider(b.provider)))).toBe("sk-b")
      expect(secret(yield* resolver.resolve("openai").pipe(Effect.withConfigProvider(a.provider)))).toBe("sk-a")
    }))

  it.scoped("a named account has its own answer; a forced refresh never uses one", () =>
    Effect.gen(function*() {
      const fake = Fake.make()
      const { reads, resolver } = yield* make({ stored: [login("at-0")], fake })
      const named = yield* resolver.resolve("acme", { account: "me" })
      expect(secret(named)).toBe("at-0")
      const after = reads()
      expect(yield* resolver.resolve("acme", { account: "me" })).toBe(named)
      expect(reads()).toBe(after)
      expect(secret(yield* resolver.resolve("acme", { forceRefresh: true }))).toBe("at-1")
      expect(fake.tokenCalls()).toBe(1)
      // The refresh wrote the store: both answers are read again, and give the new token.
      expect(secret(yield* resolver.resolve("acme"))).toBe("at-1")
      expect(secret(yield* resolver.resolve("acme", { account: "me" }))).toBe("at-1")
    }))

  it.scoped("100 concurrent callers of an expired answer share one look: one store read, one refresh", () =>
    Effect.gen(function*() {
      const fake = Fake.make()
      const { reads, resolver } = yield* make({ stored: [login("at-0", HOUR)], fake })
      yield* resolver.resolve("acme")
      yield* TestClock.adjust(Duration.millis(HOUR))
      const before = reads()
      fake.fault({ _tag: "Delay", duration: Duration.seconds(1) })
      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 100 }, () => Effect.map(resolver.resolve("acme"), secret)), { concurrency: "unbounded" })
      )
      // The clock moves once the refresh is waiting at the endpoint, not before.
      while (fake.tokenCalls() === 0) yield* Effect.yieldNow()
      yield* TestClock.adjust(Duration.seconds(1))
      const got = yield* Fiber.join(fiber)
      expect(new Set(got)).toEqual(new Set(["at-1"]))
      expect(fake.tokenCalls()).toBe(1)
      // The look itself (the refresh re-reads under the store's lock, which `modify` does).
      expect(reads() - before).toBe(1)
    }))

  it.scoped("with debug logging every call reads its sources and is traced", () =>
    Effect.gen(function*() {
      const { reads, resolver } = yield* make({ stored: [login("at-a")] })
      yield* resolver.resolve("acme")
      const lines = yield* Ref.make(List.empty<string>())
      const logger = Logger.make(({ message }) => {
        Effect.runSync(Ref.update(lines, List.prepend(String(message))))
      })
      const before = reads()
      yield* Effect.gen(function*() {
        for (let i = 0; i < 3; i++) yield* resolver.resolve("acme")
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Debug), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(reads() - before).toBe(3)
      const chosen = List.toArray(yield* Ref.get(lines)).filter((m) => m.includes("credential chosen"))
      expect(chosen.length).toBe(3)
    }))
})
