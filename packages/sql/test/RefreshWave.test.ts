/**
 * RefreshWave on Postgres: every principal's expired login refreshed exactly once, with at
 * most `concurrency` token requests in flight at once (and more than one: it is concurrent).
 */
import { AuthConfig, Domain, ProviderRegistry } from "@agent-auth/core"
import { FakeAuthServer } from "@agent-auth/testing"
import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Either, Layer, Option, Redacted } from "effect"
import * as Crypto from "node:crypto"
import * as RefreshWave from "../src/RefreshWave.js"
import * as SecretBox from "../src/SecretBox.js"
import * as SqlStoreConfig from "../src/SqlStoreConfig.js"
import * as SqlTokenStore from "../src/SqlTokenStore.js"
import { testDatabaseUrl } from "./support/postgres.js"

const ISSUER = "http://127.0.0.1:9"
const key = { provider: "acme", account: "ada" }

describe("RefreshWave", () => {
  it.live("refreshes 40 principals once each, at most `concurrency` token requests at a time", () =>
    Effect.gen(function*() {
      let inFlight = 0
      let most = 0
      const counting = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(FakeAuthServer.FakeAuthServer, (server) =>
          HttpClient.transform(server.client, (request) =>
            Effect.acquireUseRelease(
              Effect.sync(() => {
                most = Math.max(most, ++inFlight)
              }),
              () => request,
              () => Effect.sync(() => void inFlight--)
            )))
      )
      const config = yield* SqlStoreConfig.make({ kind: "postgres", url: testDatabaseUrl() })
      const layer = Layer.mergeAll(
        SqlTokenStore.layerStores({ location: config.location }).pipe(
          Layer.provide(SecretBox.layer(Redacted.make(new Uint8Array(Crypto.randomBytes(32))))),
          Layer.provide(SqlStoreConfig.layerClient(config))
        ),
        ProviderRegistry.layer
      ).pipe(
        Layer.provideMerge(counting),
        Layer.provideMerge(AuthConfig.layerWith({
          home: "/test-home",
          file: { providers: { acme: { kind: "oidc", issuer: ISSUER, clientId: FakeAuthServer.defaultClientId } } }
        })),
        Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER }))
      )
      yield* Effect.gen(function*() {
        const server = yield* FakeAuthServer.FakeAuthServer
        const stores = yield* SqlTokenStore.SqlTokenStores
        const run = Crypto.randomUUID()
        const principals = Array.from({ length: 40 }, (_, i) => `wave-${run}-${i}`)
        for (const principal of principals) {
          const issued = yield* server.issueTokens()
          const now = yield* DateTime.now
          yield* (yield* stores.forPrincipal(principal)).set(
            new Domain.OAuthCredential({
              ...key,
              tokens: new Domain.TokenSet({
                accessToken: Redacted.make(issued.access_token),
                refreshToken: Redacted.make(issued.refresh_token),
                expiresAt: DateTime.subtract(now, { seconds: 1 }),
                scopes: [],
                tokenType: "Bearer"
              }),
              claims: new Domain.AccountClaims({}),
              obtainedAt: now
            })
          )
        }
        // Each refresh answers 50 ms late, so refreshes overlap when they may.
        yield* server.inject(FakeAuthServer.Fault.delay("50 millis"), { grant: "refresh_token", times: 1000 })
        const before = (yield* server.counts).refreshToken
        most = 0
        const outcomes = yield* RefreshWave.refresh(principals, key, { concurrency: 4 })
        expect(outcomes.map((o) => o.principal)).toEqual(principals)
        expect(outcomes.filter((o) => Either.isLeft(o.result))).toEqual([])
        expect((yield* server.counts).refreshToken - before).toBe(40)
        expect(most).toBeLessThanOrEqual(4)
        expect(most).toBeGreaterThan(1)
        // Stored: every principal's login is fresh now.
        for (const principal of principals) {
          const stored = Option.getOrThrow(yield* (yield* stores.forPrincipal(principal)).get(key))
          expect(stored._tag === "OAuthCredential" && DateTime.toEpochMillis(stored.tokens.expiresAt!) > Date.now()).toBe(true)
        }
        expect((yield* stores.principals("acme")).filter((p) => p.startsWith(`wave-${run}`))).toEqual([...principals].sort())
      }).pipe(Effect.provide(layer))
    }), { timeout: 60_000 })
})
