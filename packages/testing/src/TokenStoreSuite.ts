/**
 * The one test suite every `TokenStore` layer must pass (in the manner of
 * `@effect/platform`'s KeyValueStore tests). Call it at the top level of a test file:
 *
 * ```ts
 * TokenStoreSuite.suite("layerMemory", TokenStore.layerMemory)
 * ```
 *
 * The layer is built afresh for every test (each test provides it to itself), so a
 * layer that makes a temporary folder with `FileSystem.makeTempDirectoryScoped` gives
 * every test an empty store of its own, removed when the test ends.
 *
 * The suite checks only what every layer can show through the interface; a layer's own
 * tests check the rest (file modes, locks, caches).
 */
import { describe, expect, it } from "@effect/vitest"
import { Domain, TokenStore } from "@agent-auth/core"
import { DateTime, Deferred, Effect, Fiber, Layer, Option, Redacted, Schema } from "effect"

const at = (iso: string) => DateTime.unsafeMake(iso)

/** An OAuth login with every optional field present, so a round trip covers them all. */
export const oauthCredential = (
  provider: string,
  account: string,
  accessToken = `at-${provider}-${account}`
): Domain.OAuthCredential =>
  new Domain.OAuthCredential({
    provider,
    account,
    tokens: new Domain.TokenSet({
      accessToken: Redacted.make(accessToken),
      refreshToken: Redacted.make(`rt-${provider}-${account}`),
      idToken: Redacted.make(`id-${provider}-${account}`),
      expiresAt: at("2030-01-02T03:04:05.678Z"),
      scopes: ["openid", "offline_access"],
      tokenType: "Bearer"
    }),
    claims: new Domain.AccountClaims({
      subject: `sub-${account}`,
      email: `${account}@example.com`,
      name: "Ada Lovelace",
      accountId: `acct-${account}`,
      plan: "pro",
      organization: "org-1"
    }),
    obtainedAt: at("2029-12-31T23:00:00.123Z"),
    refreshedAt: at("2030-01-01T00:00:00.456Z")
  })

/** A stored API key. */
export const apiKeyCredential = (provider: string, account: string, key = `sk-${provider}-${account}`) =>
  new Domain.ApiKeyCredential({
    provider,
    account,
    key: Redacted.make(key),
    obtainedAt: at("2029-06-01T12:00:00.000Z")
  })

/** The stored form (secrets as plain strings): equal forms mean every field round-tripped. */
export const encoded = (c: Domain.StoredCredential) => Schema.encodeSync(Domain.StoredCredential)(c)

/** The counter kept in an API key credential's key, for the concurrency cases. */
export const counterOf = (c: Option.Option<Domain.StoredCredential>): number =>
  Option.match(c, {
    onNone: () => 0,
    onSome: (c) => c._tag === "ApiKeyCredential" ? Number(Redacted.value(c.key)) : Number.NaN
  })

/** `modify`'s `f` that adds one to the counter of `key`. */
export const increment = (key: Domain.CredentialKey) => (current: Option.Option<Domain.StoredCredential>) =>
  Effect.succeed(Option.some(apiKeyCredential(key.provider, key.account, String(counterOf(current) + 1))))

/** One turn of the event loop, so pending I/O callbacks run (the clock is not involved). */
const macrotask = Effect.async<void>((resume) => {
  const handle = setTimeout(() => resume(Effect.void), 0)
  return Effect.sync(() => clearTimeout(handle))
})

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

/**
 * Registers the shared cases under `describe(name)`. `layer` is provided to each test on
 * its own, so it must give an empty store each time it is built.
 */
export const suite = <E>(name: string, layer: Layer.Layer<TokenStore.TokenStore, E>): void => {
  const test = (title: string, body: (store: TokenStore.TokenStoreShape) => Effect.Effect<void, unknown>) =>
    it.effect(title, () => Effect.flatMap(TokenStore.TokenStore, body).pipe(Effect.provide(layer)))

  describe(`TokenStore suite: ${name}`, () => {
    test("location is a non-empty string", (store) =>
      Effect.sync(() => {
        expect(typeof store.location).toBe("string")
        expect(store.location.length).toBeGreaterThan(0)
      }))

    test("get on an empty store is None, list is empty", (store) =>
      Effect.gen(function*() {
        expect(Option.isNone(yield* store.get({ provider: "openai", account: "a" }))).toBe(true)
        expect(yield* store.list()).toEqual([])
        expect(yield* store.list("openai")).toEqual([])
      }))

    test("set then get round-trips every field of an OAuth credential", (store) =>
      Effect.gen(function*() {
        const original = oauthCredential("openai", "ada@example.com")
        yield* store.set(original)
        const got = Option.getOrThrow(yield* store.get({ provider: "openai", account: "ada@example.com" }))
        expect(got._tag).toBe("OAuthCredential")
        if (got._tag !== "OAuthCredential") return
        expect(got).toBeInstanceOf(Domain.OAuthCredential)
        expect(Redacted.isRedacted(got.tokens.accessToken)).toBe(true)
        expect(Redacted.value(got.tokens.accessToken)).toBe("at-openai-ada@example.com")
        expect(got.tokens.refreshToken && Redacted.value(got.tokens.refreshToken)).toBe("rt-openai-ada@example.com")
        expect(got.tokens.idToken && Redacted.value(got.tokens.idToken)).toBe("id-openai-ada@example.com")
        expect(got.tokens.expiresAt && DateTime.toEpochMillis(got.tokens.expiresAt))
          .toBe(DateTime.toEpochMillis(at("2030-01-02T03:04:05.678Z")))
        expect(DateTime.Equivalence(got.obtainedAt, original.obtainedAt)).toBe(true)
        expect(got.refreshedAt !== undefined && DateTime.Equivalence(got.refreshedAt, original.refreshedAt!)).toBe(true)
        expect(got.tokens.scopes).toEqual(["openid", "offline_access"])
        expect(got.claims).toEqual(original.claims)
        // Every field, secrets by their value.
        expect(encoded(got)).toStrictEqual(encoded(original))
      }))

    test("set then get round-trips an API key, and minimal OAuth fields", (store) =>
      Effect.gen(function*() {
        const key = apiKeyCredential("anthropic", "default")
        const minimal = new Domain.OAuthCredential({
          provider: "demo",
          account: "m",
          tokens: new Domain.TokenSet({ accessToken: Redacted.make("only-access"), scopes: [], tokenType: "Bearer" }),
          claims: new Domain.AccountClaims({}),
          obtainedAt: at("2030-01-01T00:00:00.000Z")
        })
        yield* store.set(key)
        yield* store.set(minimal)
        const gotKey = Option.getOrThrow(yield* store.get({ provider: "anthropic", account: "default" }))
        expect(gotKey._tag).toBe("ApiKeyCredential")
        expect(gotKey._tag === "ApiKeyCredential" && Redacted.value(gotKey.key)).toBe("sk-anthropic-default")
        expect(encoded(gotKey)).toStrictEqual(encoded(key))
        const gotMin = Option.getOrThrow(yield* store.get({ provider: "demo", account: "m" }))
        expect(encoded(gotMin)).toStrictEqual(encoded(minimal))
        expect(gotMin._tag === "OAuthCredential" && gotMin.tokens.refreshToken).toBe(undefined)
      }))

    test("set overwrites the credential of the same key", (store) =>
      Effect.gen(function*() {
        yield* store.set(oauthCredential("openai", "a", "first"))
        yield* store.set(oauthCredential("openai", "a", "second"))
        const got = Option.getOrThrow(yield* store.get({ provider: "openai", account: "a" }))
        expect(got._tag === "OAuthCredential" && Redacted.value(got.tokens.accessToken)).toBe("second")
        expect((yield* store.list()).length).toBe(1)
      }))

    test("remove returns true, then false; the credential is gone", (store) =>
      Effect.gen(function*() {
        yield* store.set(apiKeyCredential("openai", "a"))
        yield* store.set(apiKeyCredential("openai", "b"))
        expect(yield* store.remove({ provider: "openai", account: "a" })).toBe(true)
        expect(yield* store.remove({ provider: "openai", account: "a" })).toBe(false)
        expect(Option.isNone(yield* store.get({ provider: "openai", account: "a" }))).toBe(true)
        // The other account is untouched.
        expect(Option.isSome(yield* store.get({ provider: "openai", account: "b" }))).toBe(true)
      }))

    test("list is ordered by provider, then account, and filters by provider", (store) =>
      Effect.gen(function*() {
        yield* store.set(apiKeyCredential("openai", "zed"))
        yield* store.set(oauthCredential("anthropic", "b"))
        yield* store.set(oauthCredential("openai", "amy"))
        yield* store.set(apiKeyCredential("anthropic", "a"))
        yield* store.set(apiKeyCredential("demo", "x"))
        const keys = (cs: ReadonlyArray<Domain.StoredCredential>) => cs.map(Domain.keyString)
        expect(keys(yield* store.list())).toEqual(["anthropic/a", "anthropic/b", "demo/x", "openai/amy", "openai/zed"])
        expect(keys(yield* store.list("openai"))).toEqual(["openai/amy", "openai/zed"])
        expect(keys(yield* store.list("nobody"))).toEqual([])
      }))

    test("two accounts of one provider live side by side", (store) =>
      Effect.gen(function*() {
        yield* store.set(oauthCredential("openai", "work", "token-work"))
        yield* store.set(oauthCredential("openai", "home", "token-home"))
        const work = Option.getOrThrow(yield* store.get({ provider: "openai", account: "work" }))
        const home = Option.getOrThrow(yield* store.get({ provider: "openai", account: "home" }))
        expect(work._tag === "OAuthCredential" && Redacted.value(work.tokens.accessToken)).toBe("token-work")
        expect(home._tag === "OAuthCredential" && Redacted.value(home.tokens.accessToken)).toBe("token-home")
      }))

    test("modify inserts, updates from the current value, and removes with None", (store) =>
      Effect.gen(function*() {
        const key = { provider: "openai", account: "a" }
        const seen: Array<number> = []
        const inserted = yield* store.modify(key, (current) => {
          seen.push(counterOf(current))
          return Effect.succeed(Option.some(apiKeyCredential("openai", "a", "1")))
        })
        expect(counterOf(inserted)).toBe(1)
        const updated = yield* store.modify(key, (current) => {
          seen.push(counterOf(current))
          return increment(key)(current)
        })
        expect(counterOf(updated)).toBe(2)
        expect(counterOf(yield* store.get(key))).toBe(2)
        expect(seen).toEqual([0, 1])
        const removed = yield* store.modify(key, () => Effect.succeed(Option.none()))
        expect(Option.isNone(removed)).toBe(true)
        expect(Option.isNone(yield* store.get(key))).toBe(true)
        expect(yield* store.list()).toEqual([])
      }))

    test("modify of one key leaves the others alone", (store) =>
      Effect.gen(function*() {
        const other = oauthCredential("openai", "other")
        yield* store.set(other)
        yield* store.modify({ provider: "openai", account: "a" }, increment({ provider: "openai", account: "a" }))
        yield* store.modify({ provider: "openai", account: "a" }, () => Effect.succeed(Option.none()))
        expect(encoded(Option.getOrThrow(yield* store.get({ provider: "openai", account: "other" }))))
          .toStrictEqual(encoded(other))
      }))

    test("modify returning the object it was given keeps the value", (store) =>
      Effect.gen(function*() {
        const key = { provider: "openai", account: "a" }
        const original = oauthCredential("openai", "a")
        yield* store.set(original)
        const result = yield* store.modify(key, (current) => Effect.succeed(current))
        expect(Option.isSome(result)).toBe(true)
        expect(encoded(Option.getOrThrow(result))).toStrictEqual(encoded(original))
        expect(encoded(Option.getOrThrow(yield* store.get(key)))).toStrictEqual(encoded(original))
        // None for an absent key writes nothing either.
        const absent = yield* store.modify({ provider: "openai", account: "none" }, (current) => Effect.succeed(current))
        expect(Option.isNone(absent)).toBe(true)
        expect((yield* store.list()).length).toBe(1)
      }))

    test("a failing f leaves the value untouched and releases the lock", (store) =>
      Effect.gen(function*() {
        const key = { provider: "openai", account: "a" }
        yield* store.set(apiKeyCredential("openai", "a", "5"))
        const error = yield* Effect.flip(store.modify(key, () => Effect.fail(new Boom())))
        expect(error._tag).toBe("Boom")
        expect(counterOf(yield* store.get(key))).toBe(5)
        // The lock was released: the next modify runs.
        yield* store.modify(key, increment(key))
        expect(counterOf(yield* store.get(key))).toBe(6)
      }))

    test("an interrupted modify releases the lock and writes nothing", (store) =>
      Effect.gen(function*() {
        const key = { provider: "openai", account: "a" }
        yield* store.set(apiKeyCredential("openai", "a", "1"))
        const entered = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(store.modify(key, () => Effect.zipRight(Deferred.succeed(entered, undefined), Effect.never)))
        yield* Deferred.await(entered)
        yield* Fiber.interrupt(fiber)
        expect(counterOf(yield* store.get(key))).toBe(1)
        yield* store.modify(key, increment(key))
        expect(counterOf(yield* store.get(key))).toBe(2)
      }))

    test("revision changes with every write, and with nothing else", (store) =>
      Effect.gen(function*() {
        const key = { provider: "openai", account: "a" }
        const steps: Array<readonly [string, Effect.Effect<unknown, unknown>, boolean]> = [
          ["get on an empty store", store.get(key), false],
          ["set", store.set(apiKeyCredential("openai", "a", "sk-1")), true],
          ["get", store.get(key), false],
          ["list", store.list(), false],
          ["modify giving back its input", store.modify(key, (c) => Effect.succeed(c)), false],
          ["modify that writes", store.modify(key, increment(key)), true],
          ["remove of a missing key", store.remove({ provider: "openai", account: "none" }), false],
          ["remove", store.remove(key), true],
          ["list after remove", store.list("openai"), false]
        ]
        for (const [what, step, writes] of steps) {
          const before = store.revision()
          yield* step
          expect({ what, changed: store.revision() !== before }).toEqual({ what, changed: writes })
        }
      }))

    test("100 concurrent modify increments lose no update", (store) =>
      Effect.gen(function*() {
        const key = { provider: "demo", account: "counter" }
        yield* Effect.forEach(Array.from({ length: 100 }), () => store.modify(key, increment(key)), {
          concurrency: "unbounded",
          discard: true
        })
        expect(counterOf(yield* store.get(key))).toBe(100)
      }))

    test("set and remove wait for a running modify", (store) =>
      Effect.gen(function*() {
        const key = { provider: "openai", account: "a" }
        yield* store.set(apiKeyCredential("openai", "a", "1"))
        const entered = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const slow = yield* Effect.fork(store.modify(key, (current) =>
          Deferred.succeed(entered, undefined).pipe(
            Effect.zipRight(Deferred.await(release)),
            Effect.zipRight(increment(key)(current))
          )))
        yield* Deferred.await(entered)
        // A set started while the modify holds the lock lands after it, not under it.
        const setter = yield* Effect.fork(store.set(apiKeyCredential("openai", "a", "10")))
        // Give the setter every chance to write (fibers and I/O callbacks both run) …
        yield* Effect.repeatN(Effect.zipRight(Effect.yieldNow(), macrotask), 30)
        // … yet it has not: it waits for the lock.
        expect(counterOf(yield* store.get(key))).toBe(1)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(slow)
        yield* Fiber.join(setter)
        expect(counterOf(yield* store.get(key))).toBe(10)
      }))
  })
}
