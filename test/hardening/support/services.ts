/**
 * The core services over the in-memory fake authorization server, under the test's Clock,
 * with two things test/support/services.ts does not give: a man in the middle on the token
 * endpoint (`Forger`, to answer with a forged ID token), and the real file store in a
 * temporary folder (to check that a failure leaves `credentials.json` as it was).
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import {
  AuthConfig,
  CredentialResolver,
  DeviceFlow,
  JwtVerifier,
  PkceFlow,
  ProviderRegistry,
  Refresher,
  Revoker,
  TokenStore
} from "@agent-auth/core"
import { NodeTokenStore } from "@agent-auth/node"
import { FakeAuthServer, TestSecureRandom } from "@agent-auth/testing"
import { Context, Effect, Layer, Option, Ref } from "effect"
import * as jose from "jose"

export const ISSUER = "http://127.0.0.1:9"
export const REDIRECT = "http://127.0.0.1:4242/callback"

/** A token-endpoint answer rewritten before the client reads it. */
export type Rewrite = (
  body: Record<string, unknown>
) => Effect.Effect<Record<string, unknown>, never, Forger | FakeAuthServer.FakeAuthServer>

export class Forger extends Context.Tag("hardening/Forger")<Forger, {
  /** From now on, every 2xx token-endpoint answer goes through `rewrite`. */
  readonly set: (rewrite: Rewrite) => Effect.Effect<void>
  /** Signs a JWT with the fake server's current private key (its `kid` unless `kid` is given). */
  readonly signAsIssuer: (payload: jose.JWTPayload, header?: Partial<jose.JWTHeaderParameters>) => Effect.Effect<string>
  /** The issuer's current public key as PEM, for the HMAC-with-public-key attack. */
  readonly issuerPublicPem: Effect.Effect<string>
}>() {}

const privateKeyOf = (fake: FakeAuthServer.FakeAuthServerShape) =>
  Effect.gen(function*() {
    const snapshot = (yield* fake.snapshot) as { readonly keys: ReadonlyArray<jose.JWK & { readonly kid: string }> }
    const jwk = snapshot.keys[snapshot.keys.length - 1]!
    const key = yield* Effect.promise(() => jose.importJWK({ ...jwk, alg: "RS256" }, "RS256", { extractable: true }))
    return { key: key as CryptoKey, jwk }
  })

export interface Options {
  /** A folder for the real file store; default: the in-memory store. */
  readonly home?: string
  readonly fake?: FakeAuthServer.FakeAuthServerOptions
}

export const servicesLayer = (options: Options = {}) => {
  const fakeAndHttp = Layer.effectContext(Effect.gen(function*() {
    const fake = yield* FakeAuthServer.makeInMemory({ issuer: ISSUER, ...options.fake })
    const rewrite = yield* Ref.make<Option.Option<Rewrite>>(Option.none())
    const forger = Forger.of({
      set: (f) => Ref.set(rewrite, Option.some(f)),
      signAsIssuer: (payload, header = {}) =>
        Effect.flatMap(privateKeyOf(fake), ({ jwk, key }) =>
          Effect.promise(() =>
            new jose.SignJWT(payload).setProtectedHeader({ alg: "RS256", typ: "JWT", kid: jwk.kid, ...header }).sign(key)
          )),
      issuerPublicPem: Effect.flatMap(privateKeyOf(fake), ({ jwk }) =>
        Effect.promise(async () => {
          const pub = await jose.importJWK({ kty: "RSA", n: jwk.n!, e: jwk.e! }, "RS256", { extractable: true })
          return jose.exportSPKI(pub as CryptoKey)
        }))
    })
    const client = HttpClient.transform(fake.client, (response, request) =>
      request.url !== fake.endpoints.token ? response : Effect.gen(function*() {
        const res = yield* response
        const f = yield* Ref.get(rewrite)
        if (Option.isNone(f) || res.status < 200 || res.status >= 300) return res
        const body = yield* Effect.orDie(res.json)
        const forged = yield* f.value(body as Record<string, unknown>).pipe(
          Effect.provideService(Forger, forger),
          Effect.provideService(FakeAuthServer.FakeAuthServer, fake)
        )
        return HttpClientResponse.fromWeb(
          request,
          new Response(JSON.stringify(forged), { status: res.status, headers: { "content-type": "application/json" } })
        )
      }))
    return Context.make(FakeAuthServer.FakeAuthServer, fake).pipe(
      Context.add(HttpClient.HttpClient, client),
      Context.add(Forger, forger)
    )
  }))
  const file = {
    providers: {
      acme: { kind: "oidc" as const, issuer: ISSUER, clientId: FakeAuthServer.defaultClientId, apiBaseUrl: "https://llm.acme.example/v1" }
    }
  }
  const store = options.home === undefined
    ? TokenStore.layerMemory
    : NodeTokenStore.layerFile.pipe(Layer.provide(NodeFileSystem.layer))
  const base = Layer.mergeAll(store, TestSecureRandom.layer(7)).pipe(
    Layer.provideMerge(AuthConfig.layerWith({ home: options.home ?? "/test-home", file })),
    Layer.provideMerge(fakeAndHttp)
  )
  const stage1 = Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(base))
  const stage2 = Refresher.layer.pipe(Layer.provideMerge(stage1))
  return Layer.mergeAll(PkceFlow.layer, DeviceFlow.layer, CredentialResolver.layer, Revoker.layer).pipe(
    Layer.provideMerge(stage2)
  )
}
