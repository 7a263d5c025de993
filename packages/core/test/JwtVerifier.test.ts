import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, HashMap, Layer, Logger, LogLevel, Option, Redacted, Ref, TestClock } from "effect"
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT, UnsecuredJWT } from "jose"
import type { JwtInvalid } from "../src/Errors.js"
import * as JwtVerifier from "../src/JwtVerifier.js"

const ISSUER = "https://login.example.test"
const JWKS_URI = "https://login.example.test/jwks"
const CLIENT = "agent-cli"
const NONCE = "n-0S6_WzA2Mj"
const BASE = Date.UTC(2025, 0, 1, 12, 0, 0)
const BASE_S = BASE / 1000

const options: JwtVerifier.VerifyOptions = { issuer: ISSUER, jwksUri: JWKS_URI, clientId: CLIENT, nonce: NONCE }

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>
const rsaA = await generateKeyPair("RS256", { extractable: true })
const rsaB = await generateKeyPair("RS256", { extractable: true })
const rogue = await generateKeyPair("RS256", { extractable: true })
const ec = await generateKeyPair("ES256", { extractable: true })

const publicJwk = async (key: KeyPair, extra: Partial<JWK>): Promise<JWK> => ({ ...(await exportJWK(key.publicKey)), use: "sig", ...extra })
const jwkA = await publicJwk(rsaA, { kid: "a", alg: "RS256" })
const jwkB = await publicJwk(rsaB, { kid: "b", alg: "RS256" })
const jwkEc = await publicJwk(ec, { kid: "e", alg: "ES256" })

const claims = (extra: Record<string, unknown> = {}): JWTPayload => ({
  iss: ISSUER,
  aud: CLIENT,
  sub: "user-1",
  nonce: NONCE,
  iat: BASE_S,
  exp: BASE_S + 600,
  ...extra
})

/** A signed token; `omit` drops claims, `kid: null` drops the header's kid. */
const sign = (
  payload: JWTPayload = claims(),
  { alg = "RS256", key = rsaA.privateKey, kid = "a" as string | null, omit = [] as ReadonlyArray<string> }: {
    alg?: string
    key?: CryptoKey | Uint8Array
    kid?: string | null
    omit?: ReadonlyArray<string>
  } = {}
): Effect.Effect<string> =>
  Effect.promise(() => {
    const body = { ...payload }
    for (const name of omit) delete body[name]
    return new SignJWT(body).setProtectedHeader({ alg, typ: "JWT", ...(kid === null ? {} : { kid }) }).sign(key)
  })

interface Answer {
  readonly status: number
  readonly body: unknown
  /** Time the fake server takes to answer (on the TestClock). */
  readonly delay?: Duration.DurationInput
}

const jwks = (...keys: ReadonlyArray<JWK>): Answer => ({ status: 200, body: { keys } })

/**
 * The verifier from its layer over a fake `HttpClient` answering from a Ref and counting
 * JWKS fetches; the TestClock starts at BASE.
 */
const setup = (answer: Answer) =>
  Effect.gen(function*() {
    const server = yield* Ref.make(answer)
    const fetches = yield* Ref.make(0)
    const client = HttpClient.make((request) =>
      Effect.gen(function*() {
        if (request.url !== JWKS_URI) {
          return HttpClientResponse.fromWeb(request, new Response("not found", { status: 404 }))
        }
        yield* Ref.update(fetches, (n) => n + 1)
        const current = yield* Ref.get(server)
        if (current.delay !== undefined) yield* Effect.sleep(current.delay)
        const body = typeof current.body === "string" ? current.body : JSON.stringify(current.body)
        return HttpClientResponse.fromWeb(
          request,
          new Response(body, { status: current.status, headers: { "content-type": "application/json" } })
        )
      })
    )
    const context = yield* Layer.build(
      JwtVerifier.layer.pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, client)))
    )
    yield* TestClock.setTime(BASE)
    const verifier = Context.get(context, JwtVerifier.JwtVerifier)
    const verify = (token: string, opts: JwtVerifier.VerifyOptions = options) => verifier.verify(Redacted.make(token), opts)
    return { verify, server, fetches: Ref.get(fetches) }
  })

/** Verification fails with `JwtInvalid` for `rule`, and nothing of the token shows in the error. */
const expectRejected = (
  verify: (token: string, opts?: JwtVerifier.VerifyOptions) => Effect.Effect<unknown, JwtInvalid>,
  token: string,
  rule: string,
  opts: JwtVerifier.VerifyOptions = options
) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(verify(token, opts))
    expect(error._tag).toBe("JwtInvalid")
    expect(error.rule).toBe(rule)
    expect(error.message).not.toContain(token)
    for (const part of token.split(".").filter((p) => p.length >= 8)) {
      expect(error.message).not.toContain(part)
      expect(error.detail).not.toContain(part)
    }
    return error
  })

describe("JwtVerifier", () => {
  it.scoped("accepts a valid token and caches the JWKS", () =>
    Effect.gen(function*() {
      const { fetches, verify } = yield* setup(jwks(jwkA))
      const token = yield* sign()
      const verified = yield* verify(token)
      expect(verified.sub).toBe("user-1")
      expect(verified.iss).toBe(ISSUER)
      expect(verified.nonce).toBe(NONCE)
      yield* verify(token)
      expect(yield* fetches).toBe(1)
    }))

  describe("alg", () => {
    it.scoped("refuses alg none without fetching keys", () =>
      Effect.gen(function*() {
        const { fetches, verify } = yield* setup(jwks(jwkA))
        const token = new UnsecuredJWT(claims()).encode()
        yield* expectRejected(verify, token, "alg")
        expect(yield* fetches).toBe(0)
      }))

    it.scoped("refuses HS256 signed with the issuer's RSA public key (PEM and JWK bytes)", () =>
      Effect.gen(function*() {
        const { verify } = yield* setup(jwks(jwkA))
        const pem = new TextEncoder().encode(yield* Effect.promise(() => exportSPKI(rsaA.publicKey)))
        const jwkBytes = new TextEncoder().encode(JSON.stringify(jwkA))
        yield* expectRejected(verify, yield* sign(claims(), { alg: "HS256", key: pem }), "alg")
        yield* expectRejected(verify, yield* sign(claims(), { alg: "HS256", key: jwkBytes }), "alg")
      }))

    it.scoped("intersects the allow-list with the issuer's algorithms", () =>
      Effect.gen(function*() {
        const { verify } = yield* setup(jwks(jwkA, jwkEc))
        const rs = yield* sign()
        const es = yield* sign(claims(), { alg: "ES256", key: ec.privateKey, kid: "e" })
        yield* expectRejected(verify, rs, "alg", { ...options, algorithms: ["ES256"] })
        const verified = yield* verify(es, { ...options, algorithms: ["ES256", "HS256"] })
        expect(verified.sub).toBe("user-1")
        // HS256 advertised by the issuer is still refused.
        const hs = yield* sign(claims(), { alg: "HS256", key: new Uint8Array(32).fill(7) })
        yield* expectRejected(verify, hs, "alg", { ...options, algorithms: ["RS256", "HS256"] })
      }))
  })

  it.scoped("refuses a malformed token", () =>
    Effect.gen(function*() {
      const { verify } = yield* setup(jwks(jwkA))
      yield* expectRejected(verify, "not-a-jwt-at-all-really", "format")
      yield* expectRejected(verify, "aGVsbG8gd29ybGQ.e30.c2lnbmF0dXJlLWhlcmU", "format")
    }))

  it.scoped("refuses a tampered payload, and a signature by another key under a known kid", () =>
    Effect.gen(function*() {
      const { verify } = yield* setup(jwks(jwkA))
      const [header, , signature] = (yield* sign()).split(".")
      const forged = Buffer.from(JSON.stringify(claims({ sub: "admin" }))).toString("base64url")
      yield* expectRejected(verify, `${header}.${forged}.${signature}`, "signature")
      yield* expectRejected(verify, yield* sign(claims(), { key: rogue.privateKey, kid: "a" }), "signature")
    }))

  it.scoped("checks iss, aud and sub", () =>
    Effect.gen(function*() {
      const { verify } = yield* setup(jwks(jwkA))
      const iss = yield* expectRejected(verify, yield* sign(claims({ iss: "https://evil.example.test" })), "iss")
      expect(iss.detail).toContain("https://evil.example.test")
      yield* expectRejected(verify, yield* sign(claims({ aud: "someone-else" })), "aud")
      yield* expectRejected(verify, yield* sign(claims(), { omit: ["sub"] }), "sub")
      yield* expectRejected(verify, yield* sign(claims({ sub: "" })), "sub")
    }))

  describe("azp", () => {
    it.scoped("requires azp = client id when aud has several values", () =>
      Effect.gen(function*() {
        const { verify } = yield* setup(jwks(jwkA))
        const aud = [CLIENT, "another-api"]
        yield* expectRejected(verify, yield* sign(claims({ aud, azp: "another-api" })), "azp")
        yield* expectRejected(verify, yield* sign(claims({ aud })), "azp")
        const verified = yield* verify(yield* sign(claims({ aud, azp: CLIENT })))
        expect(verified.aud).toEqual(aud)
      }))

    it.scoped("refuses an azp naming another client even with one audience", () =>
      Effect.gen(function*() {
        const { verify } = yield* setup(jwks(jwkA))
        yield* expectRejected(verify, yield* sign(claims({ azp: "another-client" })), "azp")
      }))
  })

  describe("time, on the TestClock", () => {
    it.scoped("exp: accepted up to 30 s after, refused from then on", () =>
      Effect.gen(function*() {
        const { verify } = yield* setup(jwks(jwkA))
        const token = yield* sign() // exp = BASE + 600 s
        yield* TestClock.adjust(Duration.millis(629_999))
        yield* verify(token)
        yield* TestClock.adjust(Duration.millis(1))
        const error = yield* expectRejected(verify, token, "exp")
        expect(error.detail).toContain("expired")
        yield* expectRejected(verify, yield* sign(claims(), { omit: ["exp"] }), "exp")
      }))

    it.scoped("nbf: refused more than 30 s in the future, accepted from then on", () =>
      Effect.gen(function*() {
        const { verify } = yield* setup(jwks(jwkA))
        const token = yield* sign(claims({ nbf: BASE_S + 100 }))
        yield* expectRejected(verify, token, "nbf")
        yield* TestClock.adjust(Duration.millis(69_999))
        yield* expectRejected(verify, token, "nbf")
        yield* TestClock.adjust(Duration.millis(1))
        yield* verify(token)
      }))

    it.scoped("iat: refused more than 30 s in the future, and required", () =>
      Effect.gen(function*() {
        const { verify } = yield* setup(jwks(jwkA))
        yield* expectRejected(verify, yield* sign(claims({ iat: BASE_S + 31 })), "iat")
        yield* verify(yield* sign(claims({ iat: BASE_S + 30 })))
        yield* expectRejected(verify, yield* sign(claims(), { omit: ["iat"] }), "iat")
      }))
  })

  it.scoped("nonce: refuses a wrong or missing nonce when one was sent", () =>
    Effect.gen(function*() {
      const { verify } = yield* setup(jwks(jwkA))
      yield* expectRejected(verify, yield* sign(claims({ nonce: "another-nonce" })), "nonce")
      const missing = yield* sign(claims(), { omit: ["nonce"] })
      yield* expectRejected(verify, missing, "nonce")
      // No nonce sent (a refresh's ID token): none required.
      const { nonce: _, ...withoutNonce } = options
      yield* verify(missing, withoutNonce)
    }))

  describe("kid and the JWKS cache", () => {
    it.scoped("an unknown kid refetches once, then not again within the 60 s cool-down", () =>
      Effect.gen(function*() {
        const { fetches, verify } = yield* setup(jwks(jwkA))
        yield* verify(yield* sign())
        expect(yield* fetches).toBe(1)
        const unknown = yield* sign(claims(), { key: rogue.privateKey, kid: "rogue" })
        // The set was fetched just now: a refetch could not learn anything yet.
        yield* expectRejected(verify, unknown, "kid")
        expect(yield* fetches).toBe(1)

        yield* TestClock.adjust(Duration.seconds(60))
        yield* expectRejected(verify, unknown, "kid")
        expect(yield* fetches).toBe(2)
        yield* expectRejected(verify, unknown, "kid")
        yield* TestClock.adjust(Duration.millis(59_999))
        yield* expectRejected(verify, unknown, "kid")
        expect(yield* fetches).toBe(2)

        yield* TestClock.adjust(Duration.millis(1))
        yield* expectRejected(verify, unknown, "kid")
        expect(yield* fetches).toBe(3)
        // The known key still verifies from the cache.
        yield* verify(yield* sign())
        expect(yield* fetches).toBe(3)
      }))

    it.scoped("a key rotated at the server verifies after one refetch", () =>
      Effect.gen(function*() {
        const { fetches, server, verify } = yield* setup(jwks(jwkA))
        yield* verify(yield* sign())
        yield* Ref.set(server, jwks(jwkB))
        yield* TestClock.adjust(Duration.seconds(61))
        const rotated = yield* sign(claims(), { key: rsaB.privateKey, kid: "b" })
        const verified = yield* verify(rotated)
        expect(verified.sub).toBe("user-1")
        expect(yield* fetches).toBe(2)
        yield* verify(rotated)
        expect(yield* fetches).toBe(2)
        // The retired key is gone with the old set.
        yield* expectRejected(verify, yield* sign(), "kid")
      }))

    it.scoped("concurrent verifications after a rotation share one refetch", () =>
      Effect.gen(function*() {
        const { fetches, server, verify } = yield* setup(jwks(jwkA))
        yield* verify(yield* sign())
        yield* Ref.set(server, { ...jwks(jwkA, jwkB), delay: Duration.seconds(1) })
        yield* TestClock.adjust(Duration.seconds(61))
        const rotated = yield* sign(claims(), { key: rsaB.privateKey, kid: "b" })
        const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 8 }, () => verify(rotated)), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.seconds(1))
        expect(yield* Fiber.join(fiber)).toHaveLength(8)
        expect(yield* fetches).toBe(2)
      }))

    it.scoped("concurrent verifications with a cold cache make exactly one JWKS fetch", () =>
      Effect.gen(function*() {
        const { fetches, verify } = yield* setup({ ...jwks(jwkA), delay: Duration.seconds(1) })
        const token = yield* sign()
        const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 10 }, () => verify(token)), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.seconds(1))
        const results = yield* Fiber.join(fiber)
        expect(results.map((c) => c.sub)).toEqual(Array.from({ length: 10 }, () => "user-1"))
        expect(yield* fetches).toBe(1)
      }))

    it.scoped("several keys without kid: the one whose signature verifies is used", () =>
      Effect.gen(function*() {
        const { kid: _a, alg: _x, ...noKidA } = jwkA
        const { kid: _b, alg: _y, ...noKidB } = jwkB
        const { verify } = yield* setup(jwks(noKidA, noKidB))
        yield* verify(yield* sign(claims(), { key: rsaB.privateKey, kid: null }))
        yield* expectRejected(verify, yield* sign(claims(), { key: rogue.privateKey, kid: null }), "signature")
      }))
  })

  describe("jwks endpoint failures", () => {
    it.scoped("HTTP 500 is rule jwks, and a later verification fetches again", () =>
      Effect.gen(function*() {
        const { fetches, server, verify } = yield* setup({ status: 500, body: { error: "server_error" } })
        const token = yield* sign()
        const error = yield* expectRejected(verify, token, "jwks")
        expect(error.detail).toContain("500")
        yield* Ref.set(server, jwks(jwkA))
        yield* verify(token)
        expect(yield* fetches).toBe(2)
      }))

    it.scoped("JSON that is not a JWKS, a body that is not JSON, and a set of only symmetric keys are rule jwks", () =>
      Effect.gen(function*() {
        const { server, verify } = yield* setup({ status: 200, body: { hello: "world" } })
        const token = yield* sign()
        yield* expectRejected(verify, token, "jwks")
        yield* Ref.set(server, { status: 200, body: { keys: [{ kid: "a" }] } })
        yield* expectRejected(verify, token, "jwks")
        yield* Ref.set(server, { status: 200, body: "<html>oops</html>" })
        yield* expectRejected(verify, token, "jwks")
        yield* Ref.set(server, jwks({ kty: "oct", kid: "a", k: "c2VjcmV0LXNlY3JldC1zZWNyZXQ" }))
        yield* expectRejected(verify, token, "jwks")
      }))

    it.scoped("a failed refetch keeps the cached keys", () =>
      Effect.gen(function*() {
        const { fetches, server, verify } = yield* setup(jwks(jwkA))
        yield* verify(yield* sign())
        yield* Ref.set(server, { status: 503, body: "" })
        yield* TestClock.adjust(Duration.seconds(60))
        yield* expectRejected(verify, yield* sign(claims(), { key: rsaB.privateKey, kid: "b" }), "jwks")
        yield* verify(yield* sign())
        expect(yield* fetches).toBe(2)
      }))
  })

  it.scoped("traces acceptance and refusal when debug logs are on, naming rules and never the token", () =>
    Effect.gen(function*() {
      const { verify } = yield* setup(jwks(jwkA))
      const lines: Array<string> = []
      const capture = Logger.make(({ annotations, logLevel, message }) => {
        const notes = HashMap.toEntries(annotations).map(([k, v]) => `${k}=${String(v)}`).sort().join(" ")
        lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)} ${notes}`)
      })
      const at = (level: LogLevel.LogLevel) => <A, E>(effect: Effect.Effect<A, E>) =>
        effect.pipe(Logger.withMinimumLogLevel(level), Effect.provide(Logger.add(capture)))
      const token = yield* sign()
      const forged = yield* sign(claims({ aud: "someone-else" }))
      // At the usual level the verifier builds no trace at all.
      yield* at(LogLevel.Info)(verify(token))
      yield* at(LogLevel.Info)(Effect.flip(verify(forged)))
      expect(lines).toEqual([])
      yield* at(LogLevel.Debug)(verify(token))
      yield* at(LogLevel.Debug)(Effect.flip(verify(forged)))
      expect(lines).toEqual([
        `DEBUG ID token accepted issuer=${ISSUER} jwks_uri=${JWKS_URI} rules=alg,signature,iss,aud,azp,exp,nbf,iat,sub,nonce`,
        `DEBUG ID token refused issuer=${ISSUER} jwks_uri=${JWKS_URI} rule=aud`
      ])
      for (const part of [...token.split("."), ...forged.split(".")]) {
        for (const line of lines) expect(line).not.toContain(part)
      }
    }))

  describe("unverifiedClaims", () => {
    it("decodes any payload without checking it, and None for garbage", async () => {
      const forged = new UnsecuredJWT({ email: "someone@example.test" }).encode()
      expect(JwtVerifier.unverifiedClaims(forged)).toEqual(Option.some({ email: "someone@example.test" }))
      expect(Option.isNone(JwtVerifier.unverifiedClaims("garbage"))).toBe(true)
    })
  })
})
