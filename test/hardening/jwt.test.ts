/**
 * Hardening, ID tokens: every case is a whole browser login — `PkceFlow.start`, the fake
 * server's authorization, `PkceFlow.complete` — whose token-endpoint answer carries a
 * forged ID token (a man in the middle rewrites it; forged tokens that need a valid
 * signature are signed with the fake issuer's own private key). Each must fail with
 * `JwtInvalid` naming the rule, and store nothing. Time is the TestClock.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { PkceFlow, TokenStore } from "@agent-auth/core"
import { FakeAuthServer } from "@agent-auth/testing"
import { expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as jose from "jose"
import { Forger, REDIRECT, type Rewrite, servicesLayer } from "./support/services.js"
import { area } from "./support/table.js"

const NOW = Date.UTC(2026, 0, 15, 9, 30, 0)
const NOW_S = NOW / 1000

/** The browser's hop through the in-memory authorization endpoint: the redirect it is sent to. */
const authorize = (url: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(HttpClientRequest.get(url))
    expect(response.status).toBe(302)
    return response.headers["location"]!
  }).pipe(Effect.scoped)

/** One whole login whose token answer goes through `rewrite`; returns how `complete` ended. */
const loginThrough = (rewrite: Rewrite | undefined) =>
  Effect.gen(function*() {
    const flow = yield* PkceFlow.PkceFlow
    const forger = yield* Forger
    if (rewrite !== undefined) yield* forger.set(rewrite)
    const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
    const location = yield* authorize(pending.authorizationUrl)
    return yield* Effect.either(flow.complete(pending, PkceFlow.parseCallbackInput(location)))
  })

/** Claims of the honest ID token in `body`, changed by `change`, signed again as the issuer. */
const resign = (change: (claims: jose.JWTPayload) => jose.JWTPayload): Rewrite => (body) =>
  Effect.gen(function*() {
    const forger = yield* Forger
    const claims = jose.decodeJwt(String(body.id_token))
    return { ...body, id_token: yield* forger.signAsIssuer(change(claims)) }
  })

/** The answer as the server gave it. */
const asIs: Rewrite = (body) => Effect.succeed(body)

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

const jwt = area("jwt", import.meta.url)

/**
 * A case: the login fails with `JwtInvalid` for `rule`, its message names the rule,
 * nothing of the forged token shows in it, and nothing is stored.
 */
const refusedWith = (
  title: string,
  rule: string,
  rewrite: Rewrite,
  before: Effect.Effect<void, never, FakeAuthServer.FakeAuthServer | PkceFlow.PkceFlow | Forger | HttpClient.HttpClient | TokenStore.TokenStore> = Effect.void,
  check: (fake: FakeAuthServer.FakeAuthServerShape) => Effect.Effect<string> = () => Effect.succeed("")
) =>
  jwt.effect(title, "refused", (t) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      yield* before
      const seen: Array<string> = []
      const record: Rewrite = (body) => Effect.tap(rewrite(body), (b) => Effect.sync(() => void seen.push(String(b.id_token))))
      const result = yield* loginThrough(record)
      expect(result._tag).toBe("Left")
      if (result._tag !== "Left") return
      const error = result.left
      expect(error._tag).toBe("JwtInvalid")
      if (error._tag !== "JwtInvalid") return
      expect(error.rule).toBe(rule)
      expect(error.message).toContain(`(${rule}: `)
      for (const token of seen) {
        for (const part of token.split(".").filter((p) => p.length >= 16)) expect(error.message).not.toContain(part)
      }
      const store = yield* TokenStore.TokenStore
      expect(yield* store.list()).toEqual([])
      const extra = yield* check(yield* FakeAuthServer.FakeAuthServer)
      t.note(`JwtInvalid rule ${rule}, nothing stored${extra}`)
    }).pipe(Effect.provide(servicesLayer())))

// The harness itself: an honest token, re-signed by the same forger, logs in. Without this,
// every refusal below could be the forger's fault.
it.effect("control: a re-signed honest ID token logs in (the forger signs valid tokens)", () =>
  Effect.gen(function*() {
    yield* TestClock.setTime(NOW)
    const result = yield* loginThrough(resign((c) => c))
    expect(result._tag).toBe("Right")
    const store = yield* TokenStore.TokenStore
    expect((yield* store.list()).map((c) => c.account)).toEqual([FakeAuthServer.defaultUser.email])
  }).pipe(Effect.provide(servicesLayer())))

refusedWith("alg none (unsigned token)", "alg", (body) =>
  Effect.sync(() => {
    const claims = jose.decodeJwt(String(body.id_token))
    return { ...body, id_token: `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.` }
  }))

refusedWith("HS256 signed with the issuer's RSA public key (PEM)", "alg", (body) =>
  Effect.gen(function*() {
    const forger = yield* Forger
    const pem = yield* forger.issuerPublicPem
    const claims = jose.decodeJwt(String(body.id_token))
    const kid = jose.decodeProtectedHeader(String(body.id_token)).kid
    const token = yield* Effect.promise(() =>
      new jose.SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT", ...(kid === undefined ? {} : { kid }) }).sign(
        new TextEncoder().encode(pem)
      )
    )
    return { ...body, id_token: token }
  }))

refusedWith("wrong iss (signed by the issuer's key)", "iss", resign((c) => ({ ...c, iss: "https://evil.example" })))

refusedWith("wrong aud (issued to another client)", "aud", resign((c) => ({ ...c, aud: "another-client" })))

refusedWith("azp mismatch with several audiences", "azp", resign((c) => ({ ...c, aud: [FakeAuthServer.defaultClientId, "another-client"], azp: "another-client" })))

refusedWith("several audiences and no azp", "azp", resign(({ azp: _, ...c }) => ({ ...c, aud: [FakeAuthServer.defaultClientId, "another-client"] })))

refusedWith("expired beyond the 30 s tolerance", "exp", resign((c) => ({ ...c, iat: NOW_S - 3_600, exp: NOW_S - 31 })))

refusedWith("nbf in the future beyond the tolerance", "nbf", resign((c) => ({ ...c, nbf: NOW_S + 120 })))

refusedWith("iat in the future beyond the tolerance", "iat", resign((c) => ({ ...c, iat: NOW_S + 120 })))

refusedWith("wrong nonce (a token from another login)", "nonce", resign((c) => ({ ...c, nonce: "nonce-of-another-login" })))

refusedWith("tampered payload (email changed, signature kept)", "signature", (body) =>
  Effect.sync(() => {
    const [header, payload, signature] = String(body.id_token).split(".")
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8"))
    return { ...body, id_token: `${header}.${b64({ ...claims, email: "attacker@evil.example" })}.${signature}` }
  }))

refusedWith(
  "unknown kid after a refetch (a key the issuer never published)",
  "kid",
  (body) =>
    Effect.gen(function*() {
      const { privateKey } = yield* Effect.promise(() => jose.generateKeyPair("RS256"))
      const claims = jose.decodeJwt(String(body.id_token))
      const token = yield* Effect.promise(() =>
        new jose.SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "JWT", kid: "rogue-key" }).sign(privateKey)
      )
      return { ...body, id_token: token }
    }),
  // An honest login first fills the JWKS cache; past the 60 s cool-down a refetch is allowed.
  Effect.gen(function*() {
    const result = yield* loginThrough(undefined)
    expect(result._tag).toBe("Right")
    yield* (yield* TokenStore.TokenStore).remove({ provider: "acme", account: FakeAuthServer.defaultUser.email })
    expect((yield* (yield* FakeAuthServer.FakeAuthServer).counts).jwks).toBe(1)
    yield* TestClock.adjust("61 seconds")
  }).pipe(Effect.orDie),
  (fake) =>
    Effect.map(fake.counts, (c) => {
      expect(c.jwks).toBe(2)
      return "; the JWKS was fetched again once"
    })
)

refusedWith("a valid signature by a key the issuer has since dropped", "kid", (body) =>
  Effect.gen(function*() {
    // Signed by the key in force; the issuer then rotates it out of its JWKS for good.
    yield* (yield* FakeAuthServer.FakeAuthServer).rotateKeys({ keepOld: false })
    return body
  }))

refusedWith("no ID token in the answer although openid was asked", "format", (body) =>
  Effect.sync(() => {
    const { id_token: _, ...rest } = body
    return rest
  }))

refusedWith("JWKS endpoint fails (HTTP 500)", "jwks", asIs, Effect.gen(function*() {
  yield* (yield* FakeAuthServer.FakeAuthServer).inject(FakeAuthServer.Fault.status(500), { endpoint: "jwks", times: 10 })
}))

refusedWith("JWKS endpoint returns garbage (truncated JSON)", "jwks", asIs, Effect.gen(function*() {
  yield* (yield* FakeAuthServer.FakeAuthServer).inject(FakeAuthServer.Fault.malformedJson, { endpoint: "jwks", times: 10 })
}))

refusedWith("JWKS endpoint returns an HTML page", "jwks", asIs, Effect.gen(function*() {
  yield* (yield* FakeAuthServer.FakeAuthServer).inject(FakeAuthServer.Fault.html(200), { endpoint: "jwks", times: 10 })
}))

refusedWith("JWKS endpoint drops the connection", "jwks", asIs, Effect.gen(function*() {
  yield* (yield* FakeAuthServer.FakeAuthServer).inject(FakeAuthServer.Fault.connectionReset, { endpoint: "jwks", times: 10 })
}))
