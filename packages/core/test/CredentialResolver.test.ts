import { describe, expect, it } from "@effect/vitest"
import { Clock, ConfigProvider, DateTime, Duration, Effect, Either, Layer, Redacted, TestClock } from "effect"
import * as AuthConfig from "../src/AuthConfig.js"
import { ApiKeyCredential, type Credential, type StoredCredential } from "../src/Domain.js"
import * as CredentialResolver from "../src/CredentialResolver.js"
import { anthropic, type CredentialMode, oidcDefaults, openai, ProviderConfig } from "../src/Provider.js"
import type { ProviderRegistry } from "../src/ProviderRegistry.js"
import * as Refresher from "../src/Refresher.js"
import * as TokenStore from "../src/TokenStore.js"
import * as Fake from "./support/fakeTokenEndpoint.js"

const HOME = "/home/someone/.agent-auth"
const MIN = 60_000
const HOUR = 60 * MIN

const openaiWith = (mode: CredentialMode) => new ProviderConfig({ ...openai, issuer: Fake.ISSUER, mode })
const acme = ProviderConfig.make({
  ...oidcDefaults,
  id: "acme",
  displayName: "Acme",
  issuer: Fake.ISSUER,
  clientId: "agent-cli",
  apiBaseUrl: "https://llm.acme.example/v1"
})
const bare = ProviderConfig.make({ ...oidcDefaults, id: "bare", displayName: "Bare", issuer: Fake.ISSUER, clientId: "c" })

interface Setup {
  readonly providers?: ReadonlyArray<ProviderConfig>
  readonly apiKeys?: Record<string, string>
  readonly stored?: ReadonlyArray<StoredCredential>
  /** More of config.json (`defaults`, `priority`). */
  readonly file?: Omit<AuthConfig.ConfigFile, "apiKeys">
  readonly fake?: Fake.FakeTokenEndpoint
  readonly resolver?: Layer.Layer<
    CredentialResolver.CredentialResolver,
    never,
    TokenStore.TokenStore | ProviderRegistry | AuthConfig.AuthConfig | Refresher.Refresher
  >
}

const run = <A, E>(
  effect: Effect.Effect<A, E, CredentialResolver.CredentialResolver | TokenStore.TokenStore>,
  setup: Setup = {},
  envVars: Record<string, string> = {}
) => {
  const fake = setup.fake ?? Fake.make()
  const apiKeys = Object.fromEntries(Object.entries(setup.apiKeys ?? {}).map(([k, v]) => [k, Redacted.make(v)]))
  const base = Layer.mergeAll(
    TokenStore.layerMemory,
    Fake.registryLayer(setup.providers ?? [openaiWith("auto"), anthropic, acme, bare]),
    AuthConfig.layerWith({ home: HOME, file: { ...setup.file, apiKeys } }),
    fake.layer
  )
  const layer = (setup.resolver ?? CredentialResolver.layer).pipe(
    Layer.provideMerge(Refresher.layer),
    Layer.provideMerge(base)
  )
  return Effect.gen(function*() {
    const store = yield* TokenStore.TokenStore
    for (const c of setup.stored ?? []) yield* store.set(c)
    return yield* effect
  }).pipe(
    // Never the real environment: a developer's OPENAI_API_KEY must not change a test.
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(envVars)))),
    Effect.provide(layer)
  )
}

const resolve = (provider: string, options?: CredentialResolver.ResolveOptions) =>
  Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve(provider, options))
const sources = (provider: string, options?: CredentialResolver.SourcesOptions) =>
  Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.sources(provider, options))

/** A source as a short string: tag, account or variable, then e(ligible) and u(sable) flags. */
const brief = (s: CredentialResolver.Source): string => {
  const what = s._tag === "Env"
    ? s.origin.variable
    : s._tag === "Config"
    ? "config"
    : s._tag === "Adc"
    ? s.origin.path
    : s.credential.account
  return `${s._tag}:${what}${s.eligible ? ":e" : ""}${s.usable ? ":u" : ""}`
}

const plainHeaders = (c: Credential) => {
  for (const v of Object.values(c.headers)) expect(Redacted.isRedacted(v)).toBe(true)
  return Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, Redacted.value(v)]))
}
const secret = (c: Credential) => Redacted.value(c._tag === "ApiKey" ? c.key : c.token)

const storedKey = (provider: string, value: string, account = "key") =>
  ApiKeyCredential.make({ provider, account, key: Redacted.make(value), obtainedAt: DateTime.unsafeMake(0) })
const oauthLogin = (provider: string, account = "me", extra: Partial<Parameters<typeof Fake.login>[0]> = {}) =>
  Fake.login({ provider, account, accessToken: "at-0", expiresAt: HOUR, accountId: "acct-1", ...extra })

type Sources = { env?: boolean; config?: boolean; stored?: boolean; oauth?: boolean | "reauth" }
const withSources = (mode: CredentialMode, s: Sources) => ({
  setup: {
    providers: [openaiWith(mode)],
    ...(s.config ? { apiKeys: { openai: "sk-config" } } : {}),
    stored: [
      ...(s.stored ? [storedKey("openai", "sk-stored")] : []),
      ...(s.oauth === true ? [oauthLogin("openai")] : []),
      // Due, and its refresh token is unknown to the server: needs a new login.
      ...(s.oauth === "reauth" ? [oauthLogin("openai", "me", { expiresAt: 0, refreshToken: "rt-revoked" })] : [])
    ]
  } satisfies Setup,
  env: s.env ? { OPENAI_API_KEY: "sk-env" } : {}
})

/** Which source each mode picks given the sources present (the precedence table). */
const table: ReadonlyArray<readonly [CredentialMode, Sources, string]> = [
  ["auto", { env: true, config: true, stored: true, oauth: true }, "Env"],
  ["auto", { config: true, stored: true, oauth: true }, "Config"],
  ["auto", { stored: true, oauth: true }, "StoredKey"],
  ["auto", { oauth: true }, "OAuth"],
  ["auto", {}, "NotLoggedIn"],
  ["auto", { oauth: "reauth" }, "ReauthRequired"],
  ["api_key_only", { env: true, config: true, stored: true, oauth: true }, "Env"],
  ["api_key_only", { config: true, oauth: true }, "Config"],
  ["api_key_only", { stored: true, oauth: true }, "StoredKey"],
  ["api_key_only", { oauth: true }, "NotLoggedIn"],
  ["prefer_oauth", { env: true, config: true, stored: true, oauth: true }, "OAuth"],
  ["prefer_oauth", { env: true, config: true, stored: true }, "Env"],
  ["prefer_oauth", { config: true, stored: true }, "Config"],
  ["prefer_oauth", { stored: true }, "StoredKey"],
  ["prefer_oauth", { env: true, oauth: "reauth" }, "Env"],
  ["prefer_oauth", { oauth: "reauth" }, "ReauthRequired"],
  ["prefer_oauth", {}, "NotLoggedIn"],
  ["oauth_only", { env: true, config: true, stored: true, oauth: true }, "OAuth"],
  ["oauth_only", { env: true, config: true, stored: true }, "NotLoggedIn"]
]

describe("CredentialResolver", () => {
  describe("precedence", () => {
    for (const [mode, sources, expected] of table) {
      const present = Object.entries(sources).map(([k, v]) => v === "reauth" ? "oauth(needs login)" : k).join("+") || "nothing"
      it.effect(`${mode} with ${present} → ${expected}`, () => {
        const { env, setup } = withSources(mode, sources)
        return run(
          Effect.map(Effect.either(resolve("openai")), (r) =>
            Either.isRight(r) ? r.right.source._tag : r.left._tag),
          setup,
          env
        ).pipe(Effect.map((got) => expect(got).toBe(expected)))
      })
    }
  })

  it.effect("OpenAI with a key: api.openai.com/v1 and Authorization: Bearer <key>", () =>
    run(
      Effect.gen(function*() {
        const c = yield* resolve("openai")
        expect(c._tag).toBe("ApiKey")
        expect(c.baseUrl).toBe("https://api.openai.com/v1")
        expect(plainHeaders(c)).toEqual({ Authorization: "Bearer sk-env" })
        expect(c.source).toEqual({ _tag: "Env", variable: "OPENAI_API_KEY" })
        expect(c.expiresAt).toBeUndefined()
      }),
      {},
      { OPENAI_API_KEY: "sk-env" }
    ))

  it.effect("OpenAI with a ChatGPT login: the Codex backend, Bearer, ChatGPT-Account-Id and originator", () =>
    run(
      Effect.gen(function*() {
        const c = yield* resolve("openai")
        expect(c._tag).toBe("Bearer")
        expect(c.baseUrl).toBe("https://chatgpt.com/backend-api/codex")
        expect(plainHeaders(c)).toEqual({
          Authorization: "Bearer at-0",
          "ChatGPT-Account-Id": "acct-1",
          originator: "agent_auth"
        })
        expect(c.source).toEqual({ _tag: "OAuth", store: "memory" })
        expect(c.expiresAt?.epochMillis).toBe(HOUR)
        if (c._tag === "Bearer") {
          expect(c.account).toBe("me")
          expect(c.claims.accountId).toBe("acct-1")
        }
      }),
      { stored: [oauthLogin("openai")] }
    ))

  it.effect("OpenAI login without an account id sends no ChatGPT-Account-Id", () =>
    run(
      Effect.map(resolve("openai"), (c) => expect(Object.keys(c.headers).sort()).toEqual(["Authorization", "originator"])),
      { stored: [Fake.login({ provider: "openai", account: "me", expiresAt: HOUR })] }
    ))

  it.effect("Anthropic: x-api-key and anthropic-version, api.anthropic.com", () =>
    run(
      Effect.gen(function*() {
        const c = yield* resolve("anthropic")
        expect(c.baseUrl).toBe("https://api.anthropic.com")
        expect(plainHeaders(c)).toEqual({ "x-api-key": "sk-ant-1", "anthropic-version": "2023-06-01" })
        expect(c.source).toEqual({ _tag: "Env", variable: "ANTHROPIC_API_KEY" })
      }),
      {},
      { ANTHROPIC_API_KEY: "sk-ant-1" }
    ))

  it.effect("config.json and stored keys name their source", () =>
    run(
      Effect.gen(function*() {
        const fromConfig = yield* resolve("anthropic")
        expect(fromConfig.source).toEqual({ _tag: "Config", path: `${HOME}/config.json` })
        expect(secret(fromConfig)).toBe("sk-ant-config")
        const fromStore = yield* resolve("openai")
        expect(fromStore.source).toEqual({ _tag: "StoredKey", store: "memory" })
        expect(secret(fromStore)).toBe("sk-stored")
      }),
      { apiKeys: { anthropic: "sk-ant-config" }, stored: [storedKey("openai", "sk-stored")] }
    ))

  it.effect("an empty environment variable counts as unset", () =>
    run(
      Effect.map(resolve("openai"), (c) => expect(c.source._tag).toBe("Config")),
      { apiKeys: { openai: "sk-config" } },
      { OPENAI_API_KEY: "" }
    ))

  it.effect("an OIDC provider: Bearer for its apiBaseUrl, no OpenAI headers; the issuer when it has none", () =>
    run(
      Effect.gen(function*() {
        const c = yield* resolve("acme")
        expect(c._tag).toBe("Bearer")
        expect(c.baseUrl).toBe("https://llm.acme.example/v1")
        expect(plainHeaders(c)).toEqual({ Authorization: "Bearer at-0" })
        expect((yield* resolve("bare")).baseUrl).toBe(Fake.ISSUER)
      }),
      { stored: [oauthLogin("acme"), oauthLogin("bare")] }
    ))

  it.effect("NotLoggedIn names the environment variable and the login command", () =>
    run(
      Effect.gen(function*() {
        const error = yield* Effect.flip(resolve("openai"))
        expect(error._tag).toBe("NotLoggedIn")
        expect(error.message).toContain("OPENAI_API_KEY")
        expect(error.message).toContain("agent-auth login openai")
        const keyOnly = yield* Effect.flip(resolve("anthropic"))
        expect(keyOnly.message).toContain("ANTHROPIC_API_KEY")
        expect(keyOnly.message).toContain("agent-auth login anthropic --with-api-key")
        expect((yield* Effect.flip(resolve("nope")))._tag).toBe("UnknownProvider")
      })
    ))

  it.effect("picks the only account, the first of several, or the named one", () =>
    run(
      Effect.gen(function*() {
        const first = yield* resolve("acme")
        expect(first._tag === "Bearer" && first.account).toBe("a")
        const named = yield* resolve("acme", { account: "b" })
        expect(named._tag === "Bearer" && named.account).toBe("b")
        expect(secret(named)).toBe("at-b")
        expect((yield* Effect.flip(resolve("acme", { account: "zzz" })))._tag).toBe("NotLoggedIn")
      }),
      {
        stored: [
          oauthLogin("acme", "b", { accessToken: "at-b" }),
          oauthLogin("acme", "a", { accessToken: "at-a" })
        ]
      }
    ))

  it.effect("a named account ignores environment keys", () =>
    run(
      Effect.map(resolve("openai", { account: "me" }), (c) => expect(c.source._tag).toBe("OAuth")),
      { stored: [oauthLogin("openai")] },
      { OPENAI_API_KEY: "sk-env" }
    ))

  it.effect("the account chooser seam decides among several", () =>
    run(
      Effect.map(resolve("acme"), (c) => expect(c._tag === "Bearer" && c.account).toBe("b")),
      {
        stored: [oauthLogin("acme", "a"), oauthLogin("acme", "b")],
        resolver: CredentialResolver.layerWith({ chooseAccount: (_, accounts) => Effect.succeed(accounts.at(-1)) })
      }
    ))

  it.effect("forceRefresh gets a new token even when the old one looks valid", () => {
    const fake = Fake.make()
    return run(
      Effect.gen(function*() {
        expect(secret(yield* resolve("acme"))).toBe("at-0")
        expect(secret(yield* resolve("acme", { forceRefresh: true }))).toBe("at-1")
        expect(fake.tokenCalls()).toBe(1)
      }),
      { stored: [oauthLogin("acme")], fake }
    )
  })

  it.effect("a fresh token in memory gives back the same Credential object (no rebuilding)", () =>
    run(
      Effect.gen(function*() {
        const a = yield* resolve("acme")
        const b = yield* resolve("acme")
        expect(b).toBe(a)
      }),
      { stored: [oauthLogin("acme")] }
    ))

  // Tokens last 1 h; the login's token was issued at t=0. With the 5-minute skew a token
  // is refreshed when 5 min are left: at t=55, 110 and 165 min. Calls at t=0..180 → 3 refreshes.
  it.effect("a call a minute for 3 hours with 1-hour tokens: always valid, exactly 3 refreshes", () => {
    const fake = Fake.make({ expiresIn: 3600 })
    return run(
      Effect.gen(function*() {
        const refreshedAt: Array<number> = []
        let last = "at-0"
        for (let minute = 0; minute <= 180; minute++) {
          const now = yield* Clock.currentTimeMillis
          expect(now).toBe(minute * MIN)
          const c = yield* resolve("acme")
          expect(c.expiresAt).toBeDefined()
          expect(c.expiresAt!.epochMillis).toBeGreaterThan(now)
          if (secret(c) !== last) {
            last = secret(c)
            refreshedAt.push(minute)
          }
          yield* TestClock.adjust(Duration.minutes(1))
        }
        expect(fake.issued()).toBe(3)
        expect(fake.tokenCalls()).toBe(3)
        expect(refreshedAt).toEqual([55, 110, 165])
      }),
      { stored: [Fake.login({ provider: "acme", account: "me", accessToken: "at-0", expiresAt: HOUR })], fake }
    )
  })
  describe("sources", () => {
    // Two stored keys, two logins (one dead: expired, no refresh token), env and config.json.
    const everything = (mode: CredentialMode): Setup => ({
      providers: [openaiWith(mode)],
      apiKeys: { openai: "sk-config" },
      stored: [
        storedKey("openai", "sk-a", "key-a"),
        storedKey("openai", "sk-b", "key-b"),
        oauthLogin("openai", "dead", { expiresAt: 0, refreshToken: null }),
        oauthLogin("openai", "live")
      ]
    })
    const env = { OPENAI_API_KEY: "sk-env" }

    it.effect("auto: every source in resolve's order, the chosen account of each kind eligible, a dead login unusable", () =>
      run(
        Effect.map(sources("openai"), (all) =>
          expect(all.map(brief)).toEqual([
            "Env:OPENAI_API_KEY:e:u",
            "Config:config:e:u",
            "StoredKey:key-a:e:u",
            "StoredKey:key-b:u",
            "OAuth:dead:e",
            "OAuth:live:u"
          ])),
        everything("auto"),
        env
      ))

    it.effect("prefer_oauth lists the logins first; oauth_only only them; api_key_only only keys", () =>
      Effect.gen(function*() {
        const order = (mode: CredentialMode) =>
          run(Effect.map(sources("openai"), (all) => all.map((s) => s._tag).join(",")), everything(mode), env)
        expect(yield* order("prefer_oauth")).toBe("OAuth,OAuth,Env,Config,StoredKey,StoredKey")
        expect(yield* order("oauth_only")).toBe("OAuth,OAuth")
        expect(yield* order("api_key_only")).toBe("Env,Config,StoredKey,StoredKey")
      }))

    it.effect("a named account: only that stored account, no environment or config.json", () =>
      run(
        Effect.map(sources("openai", { account: "live" }), (all) => expect(all.map(brief)).toEqual(["OAuth:live:e:u"])),
        everything("auto"),
        env
      ))

    it.effect("origin is what the resolved Credential says its source is", () =>
      run(
        Effect.gen(function*() {
          const first = (yield* sources("openai")).find((s) => s.eligible)!
          expect((yield* resolve("openai")).source).toEqual(first.origin)
        }),
        everything("auto")
      ))

    it.effect("a login past its expiry with a refresh token is usable (it refreshes); no network is used to say so", () => {
      const fake = Fake.make()
      return run(
        Effect.gen(function*() {
          const all = yield* sources("acme")
          expect(all.map(brief)).toEqual(["OAuth:me:e:u"])
          expect(fake.requests.length).toBe(0)
        }),
        { stored: [oauthLogin("acme", "me", { expiresAt: 0 })], fake }
      )
    })

    it.effect("an unexpired token without a refresh token is usable until it expires (TestClock)", () =>
      run(
        Effect.gen(function*() {
          expect((yield* sources("acme")).map(brief)).toEqual(["OAuth:me:e:u"])
          yield* TestClock.adjust(Duration.hours(1))
          expect((yield* sources("acme")).map(brief)).toEqual(["OAuth:me:e"])
        }),
        { stored: [oauthLogin("acme", "me", { expiresAt: HOUR, refreshToken: null })] }
      ))
  })

  describe("default account (config.json defaults, set by `agent-auth use`)", () => {
    const two = [oauthLogin("acme", "a", { accessToken: "at-a" }), oauthLogin("acme", "b", { accessToken: "at-b" })]

    it.effect("the default account is the one resolve uses and the eligible one", () =>
      run(
        Effect.gen(function*() {
          expect(secret(yield* resolve("acme"))).toBe("at-b")
          expect((yield* sources("acme")).map(brief)).toEqual(["OAuth:a:u", "OAuth:b:e:u"])
          // A named account still wins over the default.
          expect(secret(yield* resolve("acme", { account: "a" }))).toBe("at-a")
        }),
        { stored: two, file: { defaults: { acme: "b" } } }
      ))

    it.effect("a default that is not stored (logged out since) falls back to the first", () =>
      run(
        Effect.map(resolve("acme"), (c) => expect(secret(c)).toBe("at-a")),
        { stored: two, file: { defaults: { acme: "gone" } } }
      ))

    it.effect("the default of one provider does not touch another", () =>
      run(
        Effect.map(resolve("acme"), (c) => expect(secret(c)).toBe("at-a")),
        { stored: two, file: { defaults: { bare: "b" } } }
      ))

    it.effect("a default login that needs a new sign-in is not silently swapped for another account", () =>
      run(
        Effect.map(Effect.flip(resolve("acme")), (e) => {
          expect(e._tag).toBe("ReauthRequired")
          expect(e.message).toContain("(b)")
        }),
        {
          stored: [oauthLogin("acme", "a"), oauthLogin("acme", "b", { expiresAt: 0, refreshToken: "rt-revoked" })],
          file: { defaults: { acme: "b" } }
        }
      ))
  })
})
