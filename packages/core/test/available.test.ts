/**
 * `CredentialResolver.available`: which providers can give a credential right now, in
 * priority order, decided from local state only. Every test runs over an HttpClient that
 * records and refuses any request: asking must never touch the network, not even for an
 * expired login (it is refreshed when used, not when asked about) or an OIDC provider
 * whose endpoints are discovered.
 */
import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Redacted, TestClock } from "effect"
import * as AuthConfig from "../src/AuthConfig.js"
import { ApiKeyCredential, type StoredCredential } from "../src/Domain.js"
import * as CredentialResolver from "../src/CredentialResolver.js"
import { anthropic, type CredentialMode, openai, ProviderConfig } from "../src/Provider.js"
import * as ProviderRegistry from "../src/ProviderRegistry.js"
import * as Refresher from "../src/Refresher.js"
import * as TokenStore from "../src/TokenStore.js"
import * as Fake from "./support/fakeTokenEndpoint.js"

const HOUR = 3_600_000

/** The network, as `available` must see it: never. Each request is recorded, then the fiber dies. */
const offline = (seen: Array<string>) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.zipRight(
        Effect.sync(() => seen.push(`${request.method} ${request.url}`)),
        Effect.die(new Error(`available() used the network: ${request.method} ${request.url}`))
      )
    )
  )

interface Setup {
  readonly file?: AuthConfig.ConfigFile
  readonly stored?: ReadonlyArray<StoredCredential>
  readonly env?: Record<string, string>
  readonly extra?: ReadonlyArray<ProviderConfig>
}

/** The real registry (built-ins, config.json providers discovered on demand) over the offline client. */
const run = <A, E>(effect: Effect.Effect<A, E, CredentialResolver.CredentialResolver>, setup: Setup = {}) => {
  const seen: Array<string> = []
  const base = Layer.mergeAll(
    TokenStore.layerMemory,
    AuthConfig.layerWith({ home: "/h", file: setup.file ?? {} }),
    offline(seen)
  )
  const registry = ProviderRegistry.layerWith(setup.extra ?? []).pipe(Layer.provideMerge(base))
  const layer = CredentialResolver.layer.pipe(Layer.provideMerge(Refresher.layer), Layer.provideMerge(registry))
  return Effect.gen(function*() {
    const store = yield* TokenStore.TokenStore
    for (const c of setup.stored ?? []) yield* store.set(c)
    const result = yield* effect
    expect(seen).toEqual([])
    return result
  }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(setup.env ?? {})))),
    Effect.provide(layer)
  )
}

const available = (options?: CredentialResolver.AvailableOptions) =>
  Effect.map(
    Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.available(options)),
    (list) => list.map((a) => `${a.provider.id}:${a.source._tag}`)
  )

const key = (provider: string, account = "default") =>
  ApiKeyCredential.make({ provider, account, key: Redacted.make(`sk-${provider}-stored`), obtainedAt: Fake.login({ provider }).obtainedAt })

/** An OIDC provider from config.json: its endpoints come from discovery, which must not happen here. */
const acmeFile = (mode?: CredentialMode): AuthConfig.ConfigFile => ({
  providers: { acme: { kind: "oidc", issuer: "https://login.acme.example", clientId: "c", ...(mode ? { mode } : {}) } }
})

describe("CredentialResolver.available", () => {
  it.effect("nothing configured: no provider", () => Effect.map(run(available()), (got) => expect(got).toEqual([])))

  it.effect("every kind of source counts: environment, config.json, stored key, login", () =>
    Effect.map(
      run(available(), {
        file: { ...acmeFile(), apiKeys: { anthropic: Redacted.make("sk-ant-config") } },
        env: { OPENAI_API_KEY: "sk-env" },
        stored: [Fake.login({ provider: "acme", expiresAt: HOUR })]
      }),
      (got) => expect(got).toEqual(["openai:Env", "anthropic:Config", "acme:OAuth"])
    ))

  it.effect("config.json priority orders them; providers not listed follow in registry order; unknown ids are ignored", () =>
    Effect.map(
      run(available(), {
        file: { ...acmeFile(), priority: ["acme", "nope", "anthropic"] },
        stored: [key("openai"), key("anthropic"), Fake.login({ provider: "acme", expiresAt: HOUR })]
      }),
      (got) => expect(got).toEqual(["acme:OAuth", "anthropic:StoredKey", "openai:StoredKey"])
    ))

  it.effect("a priority given by the caller replaces config.json's", () =>
    Effect.map(
      run(available({ priority: ["openai"] }), {
        file: { priority: ["anthropic", "openai"] },
        stored: [key("openai"), key("anthropic")]
      }),
      (got) => expect(got).toEqual(["openai:StoredKey", "anthropic:StoredKey"])
    ))

  it.effect("an expired login with a refresh token is available, and asking does not refresh it", () =>
    Effect.map(
      run(available(), {
        file: acmeFile(),
        stored: [Fake.login({ provider: "acme", expiresAt: 0, refreshToken: "rt-0" })]
      }),
      (got) => expect(got).toEqual(["acme:OAuth"])
    ))

  it.effect("a login past re-login (expired, no refresh token) is not; an unexpired one without refresh token is, until it expires", () =>
    run(
      Effect.gen(function*() {
        expect(yield* available()).toEqual(["acme:OAuth"])
        yield* TestClock.adjust(Duration.millis(HOUR - 1))
        expect(yield* available()).toEqual(["acme:OAuth"])
        yield* TestClock.adjust(Duration.millis(1))
        expect(yield* available()).toEqual([])
      }),
      { file: acmeFile(), stored: [Fake.login({ provider: "acme", expiresAt: HOUR, refreshToken: null })] }
    ))

  it.effect("follows the mode: a dead login yields to a key under prefer_oauth; oauth_only ignores keys; api_key_only ignores logins", () =>
    Effect.gen(function*() {
      const dead = Fake.login({ provider: "acme", expiresAt: 0, refreshToken: null })
      const live = Fake.login({ provider: "acme", expiresAt: HOUR })
      const withKey = (mode: CredentialMode, login: StoredCredential) =>
        run(available(), { file: acmeFile(mode), stored: [login, key("acme")] })
      expect(yield* withKey("prefer_oauth", dead)).toEqual(["acme:StoredKey"])
      expect(yield* withKey("prefer_oauth", live)).toEqual(["acme:OAuth"])
      expect(yield* withKey("auto", live)).toEqual(["acme:StoredKey"])
      expect(yield* run(available(), { file: acmeFile("oauth_only"), stored: [key("acme")] })).toEqual([])
      expect(yield* run(available(), { file: acmeFile("api_key_only"), stored: [live] })).toEqual([])
    }))

  it.effect("the chosen account decides: another account's live login does not make a dead default available", () =>
    Effect.map(
      run(available(), {
        file: { ...acmeFile(), defaults: { acme: "dead" } },
        stored: [
          Fake.login({ provider: "acme", account: "dead", expiresAt: 0, refreshToken: null }),
          Fake.login({ provider: "acme", account: "live", expiresAt: HOUR })
        ]
      }),
      (got) => expect(got).toEqual([])
    ))

  it.effect("an empty environment variable is not a key; a provider added by the program counts too", () =>
    Effect.gen(function*() {
      const extra = new ProviderConfig({ ...anthropic, id: "extra", apiKeyEnv: ["EXTRA_KEY"] })
      expect(yield* run(available(), { env: { OPENAI_API_KEY: "", ANTHROPIC_API_KEY: "sk-ant" }, extra: [extra] }))
        .toEqual(["anthropic:Env"])
      expect(yield* run(available(), { env: { EXTRA_KEY: "k" }, extra: [extra] })).toEqual(["extra:Env"])
    }))

  it.effect("the offline client really refuses: resolving an expired login does reach it (the witness can fail)", () => {
    const seen: Array<string> = []
    const base = Layer.mergeAll(TokenStore.layerMemory, AuthConfig.layerWith({ home: "/h", file: {} }), offline(seen))
    const layer = CredentialResolver.layer.pipe(
      Layer.provideMerge(Refresher.layer),
      Layer.provideMerge(ProviderRegistry.layer.pipe(Layer.provideMerge(base)))
    )
    return Effect.gen(function*() {
      yield* Effect.flatMap(TokenStore.TokenStore, (s) => s.set(Fake.login({ provider: "openai", expiresAt: 0 })))
      const exit = yield* Effect.exit(Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve("openai")))
      expect(exit._tag).toBe("Failure")
      expect(seen).toEqual([`POST ${openai.issuer}/oauth/token`])
    }).pipe(Effect.provide(layer))
  })
})
