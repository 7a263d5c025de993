import { describe, expect, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Fiber, Layer, Option, Redacted, TestClock } from "effect"
import * as AuthConfig from "../src/AuthConfig.js"
import { ApiKeyCredential, type StoredCredential } from "../src/Domain.js"
import { DiscoveryError } from "../src/Errors.js"
import { oidcDefaults, openai, ProviderConfig } from "../src/Provider.js"
import * as Revoker from "../src/Revoker.js"
import * as TokenStore from "../src/TokenStore.js"
import * as Fake from "./support/fakeTokenEndpoint.js"

const acme = ProviderConfig.make({
  ...oidcDefaults,
  id: "acme",
  displayName: "Acme",
  issuer: Fake.ISSUER,
  clientId: "agent-cli"
})
const noRevoke = ProviderConfig.make({ ...oidcDefaults, id: "norevoke", displayName: "N", issuer: Fake.ISSUER, clientId: "n" })
const broken = ProviderConfig.make({ ...oidcDefaults, id: "broken", displayName: "B", issuer: Fake.ISSUER, clientId: "b" })
const openaiFake = new ProviderConfig({ ...openai, issuer: Fake.ISSUER })

const account = "user@example.com"

const env = (fake: Fake.FakeTokenEndpoint) =>
  Revoker.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        TokenStore.layerMemory,
        Fake.registryLayer([acme, noRevoke, broken, openaiFake], (p) =>
          p.id === "broken"
            ? Effect.fail(new DiscoveryError({ issuer: Fake.ISSUER, reason: "no usable metadata" }))
            : Effect.succeed(Fake.metadata({ revocation: p.id !== "norevoke" }))),
        AuthConfig.layerWith(),
        fake.layer
      )
    )
  )

const seed = (c: StoredCredential) => Effect.flatMap(TokenStore.TokenStore, (s) => s.set(c))
const logout = (provider: string) => Effect.flatMap(Revoker.Revoker, (r) => r.logout({ provider, account }))
const stillStored = (provider: string) =>
  Effect.map(Effect.flatMap(TokenStore.TokenStore, (s) => s.get({ provider, account })), Option.isSome)

describe("Revoker", () => {
  it.effect("revokes the refresh token with a form body, then deletes locally", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", refreshToken: "rt-secret" }))
      const result = yield* logout("acme")
      expect(result).toEqual({ revocation: { _tag: "Revoked" }, removed: true })
      expect(fake.revocations()).toEqual([{
        path: "/revoke",
        format: "form",
        body: { client_id: "agent-cli", token: "rt-secret", token_type_hint: "refresh_token" }
      }])
      expect(yield* stillStored("acme")).toBe(false)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("OpenAI: a JSON body {token, token_type_hint, client_id}", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "openai", refreshToken: "rt-secret" }))
      const result = yield* logout("openai")
      expect(result.revocation._tag).toBe("Revoked")
      expect(fake.revocations()).toEqual([{
        path: "/revoke",
        format: "json",
        body: { client_id: openai.clientId, token: "rt-secret", token_type_hint: "refresh_token" }
      }])
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a login without a refresh token revokes the access token", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", accessToken: "at-secret", refreshToken: null }))
      expect((yield* logout("acme")).revocation._tag).toBe("Revoked")
      expect(fake.revocations()[0]?.body).toEqual({ client_id: "agent-cli", token: "at-secret", token_type_hint: "access_token" })
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("no revocation endpoint: NotSupported, still deleted", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "norevoke" }))
      expect(yield* logout("norevoke")).toEqual({ revocation: { _tag: "NotSupported" }, removed: true })
      expect(fake.requests).toHaveLength(0)
      expect(yield* stillStored("norevoke")).toBe(false)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a 500 is Failed (one attempt, no secret in the reason) and the login is still deleted", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme", refreshToken: "rt-secret" }))
      fake.fault({ _tag: "Status", status: 500, error: "server_error" })
      const result = yield* logout("acme")
      expect(result.removed).toBe(true)
      expect(result.revocation._tag).toBe("Failed")
      if (result.revocation._tag === "Failed") {
        expect(result.revocation.reason).toContain("500")
        expect(result.revocation.reason).not.toContain("rt-secret")
      }
      expect(fake.revocations()).toHaveLength(1)
      expect(yield* stillStored("acme")).toBe(false)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a provider that never answers: Failed after 10 s (TestClock), then deleted", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme" }))
      fake.fault({ _tag: "Delay", duration: Duration.hours(1) })
      const fiber = yield* Effect.fork(logout("acme"))
      yield* TestClock.adjust(Duration.millis(9_999))
      expect(fiber.unsafePoll()).toBeNull()
      expect(yield* stillStored("acme")).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      const result = yield* Fiber.join(fiber)
      expect(result.revocation._tag).toBe("Failed")
      if (result.revocation._tag === "Failed") expect(result.revocation.reason).toContain("10s")
      expect(result.removed).toBe(true)
      expect(yield* stillStored("acme")).toBe(false)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("a network error is Failed and the login is still deleted", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "acme" }))
      fake.fault({ _tag: "NetworkError" })
      const result = yield* logout("acme")
      expect(result.revocation._tag).toBe("Failed")
      expect(result.removed).toBe(true)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("discovery failing does not block the deletion", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      yield* seed(Fake.login({ provider: "broken" }))
      const result = yield* logout("broken")
      expect(result.revocation._tag).toBe("Failed")
      if (result.revocation._tag === "Failed") expect(result.revocation.reason).toContain("no usable metadata")
      expect(result.removed).toBe(true)
      expect(fake.requests).toHaveLength(0)
    }).pipe(Effect.provide(env(fake)))
  })

  it.effect("nothing stored, or an API key: NothingToRevoke, no call", () => {
    const fake = Fake.make()
    return Effect.gen(function*() {
      expect(yield* logout("acme")).toEqual({ revocation: { _tag: "NothingToRevoke" }, removed: false })
      yield* seed(ApiKeyCredential.make({ provider: "acme", account, key: Redacted.make("sk-1"), obtainedAt: DateTime.unsafeMake(0) }))
      expect(yield* logout("acme")).toEqual({ revocation: { _tag: "NothingToRevoke" }, removed: true })
      expect(yield* stillStored("acme")).toBe(false)
      expect(fake.requests).toHaveLength(0)
    }).pipe(Effect.provide(env(fake)))
  })
})
