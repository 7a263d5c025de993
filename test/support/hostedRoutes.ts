/**
 * Driving `@agent-auth/server`'s routes in memory, under the test's Clock: the in-memory
 * fake authorization server with a confidential web client (a hosted service is a web
 * application with an exact redirect URI), a request helper that names the principal in a
 * header, and what the browser does at the provider.
 */
import { AuthConfig, JwtVerifier, ProviderRegistry } from "@agent-auth/core"
import { HostedLogin, PrincipalStores } from "@agent-auth/server"
import type { PendingLogins } from "@agent-auth/server"
import { FakeAuthServer, TestSecureRandom } from "@agent-auth/testing"
import { HttpClient, HttpClientRequest, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { expect } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"

export const ISSUER = "http://127.0.0.1:9"
export const PUBLIC = "https://agents.example"

export const options: HostedLogin.Options = {
  publicUrl: PUBLIC,
  timeToLive: "5 minutes",
  principal: (request) => Effect.succeed(Option.fromNullable(request.headers["x-principal"]))
}

export const WEB_CLIENT = {
  clientId: "agents-web",
  clientSecret: "agents-web-secret-for-tests",
  redirectUris: [`${PUBLIC}/auth/callback`],
  allowLoopbackRedirects: false
}

/** Settings, the fake server (and its in-memory HttpClient), registry, verifier, seeded random: all but the two stores. */
export const baseLayer = (() => {
  const base = Layer.mergeAll(
    AuthConfig.layerWith({
      file: {
        providers: {
          acme: { kind: "oidc", issuer: ISSUER, clientId: WEB_CLIENT.clientId, clientSecret: Redacted.make(WEB_CLIENT.clientSecret) }
        }
      }
    }),
    TestSecureRandom.layer(3)
  ).pipe(Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER, clients: [WEB_CLIENT] })))
  return Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(base))
})()

export interface Answer {
  readonly status: number
  readonly location: string | undefined
  readonly body: string
}

/** One request through the routes, as `principal` (or nobody). */
export const call = (method: "GET" | "POST", path: string, principal?: string) =>
  Effect.gen(function*() {
    const app = yield* HttpRouter.toHttpApp(HostedLogin.router(options))
    const request = new Request(new URL(path, PUBLIC), {
      method,
      headers: principal === undefined ? {} : { "x-principal": principal }
    })
    const response = yield* app.pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, HttpServerRequest.fromWeb(request)),
      Effect.catchTag("RouteNotFound", () => Effect.succeed(HttpServerResponse.empty({ status: 404 })))
    )
    const web = HttpServerResponse.toWeb(response)
    return { status: web.status, location: web.headers.get("location") ?? undefined, body: yield* Effect.promise(() => web.text()) } as Answer
  })

/** What the browser does at the provider: the fake approves at once and redirects to the callback. */
export const authorize = (url: string) =>
  Effect.gen(function*() {
    const response = yield* (yield* HttpClient.HttpClient).execute(HttpClientRequest.get(url))
    expect(response.status).toBe(302)
    return response.headers["location"]!
  }).pipe(Effect.scoped)

/** The callback URL's path and query, as the browser would request it from the service. */
export const callbackPath = (location: string) => {
  const url = new URL(location)
  expect(`${url.origin}${url.pathname}`).toBe(`${PUBLIC}/auth/callback`)
  return `${url.pathname}${url.search}`
}

/** Starts a login as `principal` and returns the callback path the provider sends back. */
export const startLogin = (principal: string) =>
  Effect.gen(function*() {
    const started = yield* call("GET", "/auth/login/acme", principal)
    expect(started.status).toBe(303)
    return callbackPath(yield* authorize(started.location!))
  })

export const storeOf = (principal: string) => Effect.flatMap(PrincipalStores.PrincipalStores, (s) => s.forPrincipal(principal))

/** The access tokens in a principal's store (what a test compares; never printed). */
export const accessTokens = (principal: string) =>
  Effect.map(Effect.flatMap(storeOf(principal), (s) => s.list()), (list) =>
    list.map((c) => (c._tag === "OAuthCredential" ? Redacted.value(c.tokens.accessToken) : "api-key")))

export const statusOf = (principal: string) =>
  Effect.map(call("GET", "/auth/status", principal), (a) => JSON.parse(a.body) as { principal: string; logins: Array<{ account: string }> })

/** The services the routes need besides the stores. */
export type Stores = PendingLogins.PendingLogins | PrincipalStores.PrincipalStores
