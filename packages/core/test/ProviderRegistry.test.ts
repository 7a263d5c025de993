import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { AuthConfig, ProviderRegistry } from "@agent-auth/core"
import type { ConfigFile } from "../src/AuthConfig.js"
import { staticHttp } from "./support/staticHttp.js"

const issuer = "https://login.acme.example"
const doc = {
  issuer,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  jwks_uri: `${issuer}/jwks`,
  revocation_endpoint: `${issuer}/revoke`
}

const registry = (file: ConfigFile, routes: Record<string, unknown> = {}, seen: Array<string> = []) =>
  ProviderRegistry.layer.pipe(
    Layer.provide(AuthConfig.layerWith({ home: "/h", file })),
    Layer.provide(staticHttp(routes, seen))
  )

const acme = { acme: { kind: "oidc" as const, issuer, clientId: "agent-cli" } }

describe("ProviderRegistry", () => {
  it.effect("lists the built-ins and configured providers", () =>
    Effect.gen(function*() {
      const r = yield* ProviderRegistry.ProviderRegistry
      expect(r.list.map((p) => p.id)).toEqual(["openai", "anthropic", "google", "vertex", "acme"])
      const unknown = yield* Effect.flip(r.get("nope"))
      expect(unknown._tag).toBe("UnknownProvider")
      expect(unknown.message).toContain("openai, anthropic, google, vertex, acme")
    }).pipe(Effect.provide(registry({ providers: acme }))))

  it.effect("derives OpenAI's endpoints from its issuer, which config.json can override", () =>
    Effect.gen(function*() {
      const r = yield* ProviderRegistry.ProviderRegistry
      const openai = yield* r.get("openai")
      expect(openai.clientId).toBe("app_EMoamEEZ73f0CkXaXp7hrann")
      const m = yield* r.metadata(openai)
      expect(m.token_endpoint).toBe("http://127.0.0.1:8080/oauth/token")
      expect(m.authorization_endpoint).toBe("http://127.0.0.1:8080/oauth/authorize")
    }).pipe(Effect.provide(registry({ providers: { openai: { issuer: "http://127.0.0.1:8080" } } }))))

  it.effect("discovers an OIDC issuer once per process", () => {
    const seen: Array<string> = []
    return Effect.gen(function*() {
      const r = yield* ProviderRegistry.ProviderRegistry
      const p = yield* r.get("acme")
      const m = yield* r.metadata(p)
      yield* r.metadata(p)
      expect(m.token_endpoint).toBe(`${issuer}/token`)
      expect(seen).toEqual([`${issuer}/.well-known/openid-configuration`])
    }).pipe(Effect.provide(registry({ providers: acme }, { [`${issuer}/.well-known/openid-configuration`]: doc }, seen)))
  })

  it.effect("falls back to RFC 8414 metadata", () =>
    Effect.gen(function*() {
      const r = yield* ProviderRegistry.ProviderRegistry
      const m = yield* r.metadata(yield* r.get("acme"))
      expect(m.issuer).toBe(issuer)
    }).pipe(Effect.provide(registry({ providers: acme }, { [`${issuer}/.well-known/oauth-authorization-server`]: doc }))))

  it.effect("refuses metadata that names another issuer", () =>
    Effect.gen(function*() {
      const r = yield* ProviderRegistry.ProviderRegistry
      const e = yield* Effect.flip(r.metadata(yield* r.get("acme")))
      expect(e._tag).toBe("DiscoveryError")
      expect(e.message).toContain("https://evil.example")
    }).pipe(Effect.provide(registry({ providers: acme }, {
      [`${issuer}/.well-known/openid-configuration`]: { ...doc, issuer: "https://evil.example" }
    }))))

  it.effect("applies endpoint overrides on top of discovery", () =>
    Effect.gen(function*() {
      const r = yield* ProviderRegistry.ProviderRegistry
      const m = yield* r.metadata(yield* r.get("acme"))
      expect(m.token_endpoint).toBe("https://gw.acme.example/token")
      expect(m.authorization_endpoint).toBe(`${issuer}/authorize`)
    }).pipe(Effect.provide(registry(
      { providers: { acme: { ...acme.acme, endpoints: { token: "https://gw.acme.example/token" } } } },
      { [`${issuer}/.well-known/openid-configuration`]: doc }
    ))))

  it.effect("a new provider needs an issuer and a client id", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.provide(ProviderRegistry.ProviderRegistry, registry({ providers: { acme: { issuer } } })))
      expect(Exit.isFailure(exit)).toBe(true)
      const e = yield* Effect.flip(Effect.provide(ProviderRegistry.ProviderRegistry, registry({ providers: { acme: { issuer } } })))
      expect(e).toMatchObject({ _tag: "ConfigInvalid", field: "providers.acme.clientId" })
    }))
})
