/**
 * Hardening, leaks: secrets appear nowhere but `token`'s stdout.
 *
 * The CLI cases run the real bundle against the fake server on a 127.0.0.1 socket, with
 * either real tokens (issued by the server, or obtained by a real login, and read back from
 * `credentials.json`) or canaries the server has never seen (a JWT-shaped access token, a
 * refresh token, an ID token, an API key), through every command, `--json` and `--verbose`
 * included, and through the error paths. The library cases run the core services in
 * memory and look at every form an error takes: message, String, JSON, inspect,
 * `Cause.pretty`, and the logs at debug level.
 *
 * A "leak" is the secret or any 12-character piece of it (a masked token shows 4 + 4).
 */
import { Cause, DateTime, Effect, Exit, Layer, Logger, LogLevel, Option, Redacted, Scope, TestClock } from "effect"
import { HttpClient, HttpClientError, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { AuthHttpClient, CredentialResolver, Domain, PkceFlow, Refresher, TokenStore } from "@agent-auth/core"
import { FakeAuthServer } from "@agent-auth/testing"
import { afterAll, expect } from "@effect/vitest"
import * as fs from "node:fs"
import * as net from "node:net"
import * as util from "node:util"
import { type CliResult, cliEnv, finish, nextEvent, run, start } from "../support/cli.js"
import { authorize, expectNoSecret, homes, raw } from "./support/attack.js"
import { driveClock } from "./support/clock.js"
import { account, credentialsPath, readCredentials, seedIssued, seedLogin, storedTokens } from "./support/seed.js"
import { Forger, REDIRECT, servicesLayer } from "./support/services.js"
import { area } from "./support/table.js"
import { serveForFile } from "../support/fakeServer.js"

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

/** Canaries: distinctive, and shaped like the real thing. */
const CANARY = {
  access: `${b64({ kid: "canary-7f3a", alg: "RS256", typ: "JWT" })}.${b64({ sub: "canary-user", canary: "access-7f3a9c1e5b2d" })}.canary-access-signature-7f3a9c1e5b2d4a6f`,
  refresh: "canary-refresh-7f3a9c1e5b2d4a6f80917e2d",
  idToken: `${b64({ kid: "canary-id-9e1d", alg: "RS256", typ: "JWT" })}.${b64({ sub: "canary-user", canary: "id-9e1d" })}.canary-id-signature-9e1d2c3b4a5f`,
  apiKey: "sk-canary-apikey-7f3a9c1e5b2d4a6f8091"
}
const canaries = [CANARY.access, CANARY.refresh, CANARY.idToken]

let fake: FakeAuthServer.FakeAuthServerShape
const home = homes()
const served = serveForFile({}, (server) => (fake = server))
afterAll(() => home.cleanup())

/** Neither stream of any of these results holds any of `secrets`. */
const clean = (results: ReadonlyArray<readonly [string, CliResult]>, secrets: ReadonlyArray<string>) => {
  for (const [what, r] of results) {
    for (const s of secrets) {
      expectNoSecret(r.stdout, s, `stdout of \`${what}\``)
      expectNoSecret(r.stderr, s, `stderr of \`${what}\``)
    }
  }
}

/** Runs each command line in `dir` (one after another); returns them with their results. */
const runAll = async (dir: string, lines: ReadonlyArray<ReadonlyArray<string>>, env: Record<string, string> = {}) => {
  const out: Array<readonly [string, CliResult]> = []
  for (const args of lines) out.push([args.join(" "), await run(args, cliEnv(dir, env))])
  return out
}

/** A config.json whose acme issuer is a 127.0.0.1 port nobody listens on. */
const deadPort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const leaks = area("leaks", import.meta.url)

// ------------------------------------------------------------------------- the CLI, real tokens

leaks.promise("login --json --verbose: not the code, not the tokens it stored", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  const child = start(["login", "acme", "--no-browser", "--json", "--verbose"], cliEnv(dir))
  const done = finish(child)
  const event = await nextEvent(child, "authorization_url")
  const callback = new URL(await authorize(String(event.url)))
  const code = callback.searchParams.get("code")!
  expect((await raw(Number(callback.port), callback.pathname + callback.search)).status).toBe(200)
  const r = await done
  expect(r.code).toBe(0)
  expect(r.stderr).toContain("debug") // --verbose traced the steps
  const secrets = [code, ...storedTokens(dir)]
  expect(secrets.length).toBe(4)
  clean([["login", r]], secrets)
  t.note("code, access, refresh and ID token: none in stdout/stderr")
})

leaks.promise("providers, status (--json, --verbose): masked at most", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  await seedIssued(dir, fake)
  const secrets = storedTokens(dir)
  const results = await runAll(dir, [
    ["providers"],
    ["providers", "--json"],
    ["status"],
    ["status", "--json"],
    ["status", "acme", "--verbose"],
    ["status", "acme", "--json", "--verbose"]
  ])
  for (const [, r] of results) expect(r.code).toBe(0)
  clean(results, secrets)
  const masked = JSON.parse(results[3]![1].stdout).providers[0].credentials[0].token as string
  expect(masked).toMatch(/^.{1,4}….{1,4}$/)
  t.note(`6 runs; status shows the token as ${masked.length} masked characters`)
})

leaks.promise("token: the access token on stdout only, nothing else anywhere", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  const issued = await seedIssued(dir, fake)
  const plain = await run(["token", "acme"], cliEnv(dir))
  const verbose = await run(["token", "acme", "--verbose"], cliEnv(dir))
  for (const r of [plain, verbose]) {
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`${issued.access_token}\n`)
  }
  clean([["token", { ...plain, stdout: "" }], ["token --verbose", { ...verbose, stdout: "" }]], storedTokens(dir))
  clean([["token", plain], ["token --verbose", verbose]], [issued.refresh_token, issued.id_token!])
  t.note("stdout exactly the access token; stderr clean; no refresh or ID token")
})

leaks.promise("token --json: the access token, never the refresh or ID token", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  const issued = await seedIssued(dir, fake)
  const r = await run(["token", "acme", "--json", "--verbose"], cliEnv(dir))
  expect(r.code).toBe(0)
  const json = JSON.parse(r.stdout)
  expect(json.secret).toBe(issued.access_token)
  expect(json.headers.Authorization).toBe(`Bearer ${issued.access_token}`)
  clean([["token --json", r]], [issued.refresh_token, issued.id_token!])
  clean([["token --json (stderr)", { ...r, stdout: "" }]], [issued.access_token])
  t.note("stdout has the access token twice (secret, header), no refresh or ID token; stderr clean")
})

leaks.promise("refresh --json --verbose: neither the old nor the new tokens", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  await seedIssued(dir, fake)
  const before = storedTokens(dir)
  const results = await runAll(dir, [["refresh", "acme", "--json", "--verbose"], ["refresh", "acme"]])
  for (const [, r] of results) expect(r.code).toBe(0)
  const after = storedTokens(dir)
  expect(after[0]).not.toBe(before[0])
  clean(results, [...before, ...after])
  t.note("2 refreshes: old and rotated tokens absent from both streams")
})

leaks.promise("logout --json --verbose (revocation at the server)", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  await seedIssued(dir, fake)
  const secrets = storedTokens(dir)
  const results = await runAll(dir, [["logout", "acme", "--json", "--verbose"]])
  expect(results[0]![1].code).toBe(0)
  expect(JSON.parse(results[0]![1].stdout.trim()).revocation).toBe("revoked")
  clean(results, secrets)
  t.note("revoked and deleted; no token in either stream")
})

leaks.promise("an API key: login --with-api-key from stdin, status, token", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  const stored = await run(["login", "anthropic", "--with-api-key", "--json", "--verbose"], cliEnv(dir), `${CANARY.apiKey}\n`)
  expect(stored.code).toBe(0)
  const status = await runAll(dir, [["status", "--verbose"], ["status", "anthropic", "--json"], ["providers", "--json"]])
  // The same key from the environment is masked just the same.
  const fromEnv = await runAll(dir, [["status", "openai", "--json", "--verbose"]], { OPENAI_API_KEY: CANARY.apiKey })
  clean([["login --with-api-key", stored], ...status, ...fromEnv], [CANARY.apiKey])
  const token = await run(["token", "anthropic"], cliEnv(dir))
  expect(token.stdout).toBe(`${CANARY.apiKey}\n`)
  t.note("stored, env and config keys masked in 5 runs; `token` prints it")
})

// ------------------------------------------------------------------------- the CLI, canaries, error paths

leaks.promise("refresh refused (invalid_grant) with canary tokens: token, refresh, status", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  await seedLogin(dir, { access: CANARY.access, refresh: CANARY.refresh, idToken: CANARY.idToken, expiresIn: -60 })
  const results = await runAll(dir, [
    ["token", "acme", "--verbose"],
    ["token", "acme", "--json"],
    ["refresh", "acme", "--verbose"],
    ["status", "acme", "--verbose"],
    ["status", "acme", "--json"]
  ])
  for (const [what, r] of results.slice(0, 3)) {
    expect(r.code, what).toBe(1)
    expect(r.stderr, what).toContain("agent-auth login acme")
  }
  clean(results, canaries)
  // The refused login is kept (never deleted on a refusal), still holding the canaries.
  expect(readCredentials(dir)).toContain(CANARY.refresh)
  t.note("exit 1 asking for a login, 5 runs clean, login kept")
})

leaks.promise("corrupt credentials file holding canaries: status, token", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  fs.writeFileSync(
    credentialsPath(dir),
    `{"version":1,"credentials":[{"_tag":"OAuthCredential","provider":"acme","account":"${account}","tokens":{"accessToken":"${CANARY.access}","refreshToken":"${CANARY.refresh}"`,
    { mode: 0o600 }
  )
  const results = await runAll(dir, [["status", "--verbose"], ["token", "acme", "--verbose"]])
  expect(results[0]![1].code).toBe(4)
  expect(results[0]![1].stderr).toContain("corrupt-")
  clean(results, canaries)
  t.note("exit 4 naming where it was moved; no canary in the report")
})

leaks.promise("credentials file failing the schema around canaries", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  await seedLogin(dir, { access: CANARY.access, refresh: CANARY.refresh, expiresIn: 600 })
  const doc = JSON.parse(readCredentials(dir))
  doc.credentials[0].tokens.tokenType = { value: CANARY.refresh }
  doc.credentials[0].tokens.expiresAt = CANARY.access
  fs.writeFileSync(credentialsPath(dir), JSON.stringify(doc), { mode: 0o600 })
  const results = await runAll(dir, [["token", "acme", "--verbose"], ["status", "acme", "--verbose"], ["status", "--json"]])
  // The entry is skipped (exit 1: no usable login), reported by its field path only.
  expect(results.map(([, r]) => r.code)).toEqual([1, 1, 1])
  expect(results[0]![1].stderr).toContain("credentials[0].tokens.")
  expect(results[1]![1].stdout).toContain("credentials[0].tokens.")
  clean(results, canaries)
  t.note("the entry skipped (exit 1), named by its field path only in token's warning and status's ✗ line")
})

leaks.promise("network down (the issuer unreachable) with canary tokens: token, refresh, logout", "refused", async (t) => {
  const dir = home.acme(`http://127.0.0.1:${await deadPort()}`, fake.clientId)
  await seedLogin(dir, { access: CANARY.access, refresh: CANARY.refresh, idToken: CANARY.idToken, expiresIn: -60 })
  const results = await runAll(dir, [
    ["token", "acme", "--verbose"],
    ["refresh", "acme", "--json", "--verbose"],
    ["logout", "acme", "--json", "--verbose"]
  ])
  expect(results.map(([, r]) => r.code)).toEqual([3, 3, 0])
  expect(results[2]![1].stderr).toContain("revocation at the provider failed")
  clean(results, canaries)
  t.note("exit 3, 3; logout deletes locally and says revocation failed; no canary")
})

leaks.promise("token endpoint answers 500 (after the retries) with canary tokens", "refused", async (t) => {
  // A server of its own: its fault queue and counts belong to this case alone.
  const own = await Effect.runPromise(Scope.extend(FakeAuthServer.make(), served.scope()))
  const dir = home.acme(own.issuer, own.clientId)
  await seedLogin(dir, { access: CANARY.access, refresh: CANARY.refresh, idToken: CANARY.idToken, expiresIn: -60 })
  await Effect.runPromise(own.inject(FakeAuthServer.Fault.status(500), { times: 100, grant: "refresh_token" }))
  const results = await runAll(dir, [["token", "acme", "--verbose"]])
  const r = results[0]![1]
  expect(r.code).toBe(3)
  expect(r.stderr).toContain("answered HTTP 500")
  expect((await Effect.runPromise(own.counts)).refreshToken).toBe(1 + Refresher.defaultRetryPolicy.retries)
  clean(results, canaries)
  t.note("exit 3 after 5 calls; no canary in the retries' traces")
}, { concurrent: true, timeout: 40_000 })

leaks.promise("token endpoint unreachable (after the retries) with canary tokens", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId, { endpoints: { token: `http://127.0.0.1:${await deadPort()}/token` } })
  await seedLogin(dir, { access: CANARY.access, refresh: CANARY.refresh, idToken: CANARY.idToken, expiresIn: -60 })
  const results = await runAll(dir, [["refresh", "acme", "--verbose"]])
  expect(results[0]![1].code).toBe(3)
  expect(results[0]![1].stderr).toContain("connection failed")
  clean(results, canaries)
  t.note("NetworkError, exit 3; no canary")
}, { concurrent: true, timeout: 40_000 })

// ------------------------------------------------------------------------- the library

/** Every printable form of a value and of a failure carrying it. */
const forms = (value: unknown): ReadonlyArray<readonly [string, string]> => [
  ["String", String(value)],
  ["JSON.stringify", JSON.stringify(value) ?? ""],
  ["util.inspect", util.inspect(value, { depth: 20 })],
  ["message", (value as { message?: unknown })?.message === undefined ? "" : String((value as { message: unknown }).message)],
  ["Cause.pretty(fail)", Cause.pretty(Cause.fail(value))],
  ["Cause.pretty(die)", Cause.pretty(Cause.die(value))]
]

/** Logs at every level, captured. */
const captureLogs = (lines: Array<string>) =>
  Layer.mergeAll(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ cause, logLevel, message }) => {
        lines.push(`${logLevel.label} ${util.inspect(message, { depth: 20 })} ${Cause.isEmpty(cause) ? "" : Cause.pretty(cause)}`)
      })
    ),
    Logger.minimumLogLevel(LogLevel.All)
  )

const noCanary = (label: string, text: string, secrets: ReadonlyArray<string> = [...canaries, CANARY.apiKey]) => {
  for (const s of secrets) expectNoSecret(text, s, label)
}

/** The canary login in the in-memory store, expired a minute ago (or fresh for an hour). */
const seedCanary = (fresh = false) =>
  Effect.gen(function*() {
    const store = yield* TokenStore.TokenStore
    const now = yield* DateTime.now
    yield* store.set(Domain.OAuthCredential.make({
      provider: "acme",
      account,
      tokens: Domain.TokenSet.make({
        accessToken: Redacted.make(CANARY.access),
        refreshToken: Redacted.make(CANARY.refresh),
        idToken: Redacted.make(CANARY.idToken),
        expiresAt: fresh ? DateTime.add(now, { hours: 1 }) : DateTime.subtract(now, { minutes: 1 }),
        scopes: ["openid", "offline_access"],
        tokenType: "Bearer"
      }),
      claims: Domain.AccountClaims.make({ email: account }),
      obtainedAt: now
    }))
  })

/** Every form of a failure and the logs around it: no canary. Returns how many texts were checked. */
const checkFailure = (label: string, exit: Exit.Exit<unknown, unknown>, logs: ReadonlyArray<string>): number => {
  expect(Exit.isFailure(exit), label).toBe(true)
  if (!Exit.isFailure(exit)) return 0
  const texts: Array<readonly [string, string]> = [["Cause.pretty(exit)", Cause.pretty(exit.cause)], ...logs.map((l, i) => [`log ${i}`, l] as const)]
  const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
  if (error !== undefined) texts.push(...forms(error))
  for (const [form, text] of texts) noCanary(`${label}: ${form}`, text)
  return texts.length
}

const T0 = Date.UTC(2026, 0, 15, 9, 30, 0)

leaks.effect("library: ReauthRequired, TokenEndpointError, NetworkError from refreshing canaries", "refused", (t) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const fake = yield* FakeAuthServer.FakeAuthServer
    const resolver = yield* CredentialResolver.CredentialResolver
    const Fault = FakeAuthServer.Fault
    const cases: ReadonlyArray<readonly [string, FakeAuthServer.Fault | undefined, string]> = [
      ["unknown refresh token", undefined, "ReauthRequired"],
      ["invalid_grant", Fault.invalidGrant, "ReauthRequired"],
      ["HTTP 500", Fault.status(500), "TokenEndpointError"],
      ["HTTP 429", Fault.rateLimited(3), "TokenEndpointError"],
      ["connection reset", Fault.connectionReset, "NetworkError"],
      ["HTML", Fault.html(502), "TokenEndpointError"],
      ["no access_token", Fault.missingAccessToken, "NetworkError"],
      ["timeout", Fault.delay("5 minutes"), "NetworkError"]
    ]
    let checked = 0
    for (const [name, fault, tag] of cases) {
      yield* seedCanary()
      yield* fake.clearFaults
      if (fault !== undefined) yield* fake.inject(fault, { times: 100, grant: "refresh_token" })
      const logs: Array<string> = []
      const { exit } = yield* driveClock(resolver.resolve("acme")).pipe(Effect.provide(captureLogs(logs)))
      expect(Exit.isFailure(exit) && Option.getOrUndefined(Cause.failureOption(exit.cause))?._tag, name).toBe(tag)
      checked += checkFailure(name, exit, logs)
    }
    t.note(`8 failures, ${checked} texts (message, String, JSON, inspect, Cause.pretty, debug logs): clean`)
  }).pipe(Effect.provide(servicesLayer())))

leaks.effect("library: JwtInvalid from a token answer made of canaries", "refused", (t) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const flow = yield* PkceFlow.PkceFlow
    const forger = yield* Forger
    let checked = 0
    for (const idToken of [CANARY.idToken, "not-a-jwt-canary-7f3a9c1e5b2d4a6f"]) {
      yield* forger.set((body) =>
        Effect.succeed({ ...body, access_token: CANARY.access, refresh_token: CANARY.refresh, id_token: idToken })
      )
      const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
      const location = yield* (yield* FakeAuthServer.FakeAuthServer).client.execute(HttpClientRequest.get(pending.authorizationUrl)).pipe(
        Effect.map((r) => r.headers["location"]!),
        Effect.scoped,
        Effect.orDie
      )
      const logs: Array<string> = []
      const exit = yield* Effect.exit(flow.complete(pending, PkceFlow.parseCallbackInput(location))).pipe(
        Effect.provide(captureLogs(logs))
      )
      expect(Exit.isFailure(exit) && Option.getOrUndefined(Cause.failureOption(exit.cause))?._tag).toBe("JwtInvalid")
      checked += checkFailure("JwtInvalid", exit, logs)
      for (const form of forms(Option.getOrUndefined(Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()))) {
        expectNoSecret(form[1], idToken, `JwtInvalid ${form[0]}`)
      }
    }
    expect(yield* (yield* TokenStore.TokenStore).list()).toEqual([])
    t.note(`2 forged answers, JwtInvalid, ${checked} texts clean, nothing stored`)
  }).pipe(Effect.provide(servicesLayer())))

leaks.effect("library: a credential printed by accident (String, JSON, inspect, log, defect)", "refused", (t) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    yield* seedCanary(true)
    const stored = Option.getOrThrow(yield* (yield* TokenStore.TokenStore).get({ provider: "acme", account }))
    const resolved = yield* (yield* CredentialResolver.CredentialResolver).resolve("acme")
    expect(Redacted.value(Domain.credentialSecret(resolved))).toBe(CANARY.access)
    const logs: Array<string> = []
    yield* Effect.logDebug("stored", stored, "resolved", resolved).pipe(Effect.provide(captureLogs(logs)))
    yield* Effect.logError("failed", Cause.die(resolved)).pipe(Effect.provide(captureLogs(logs)))
    const values = [["stored credential", stored], ["resolved credential", resolved], ["token set", stored._tag === "OAuthCredential" ? stored.tokens : undefined]] as const
    for (const [label, value] of values) {
      expect(value).toBeDefined()
      for (const [form, text] of forms(value)) noCanary(`${label}: ${form}`, text)
    }
    expect(logs.length).toBeGreaterThanOrEqual(2)
    for (const line of logs) noCanary("log", line)
    t.note(`3 values × 6 forms and ${logs.length} debug/error log lines: only <redacted>`)
  }).pipe(Effect.provide(servicesLayer())))

leaks.effect("library: model calls through AuthHttpClient (transport failure, 500, 200)", "refused", (t) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    yield* seedCanary(true)
    const resolver = yield* CredentialResolver.CredentialResolver
    // The model API: unreachable for /down, 500 for /fail, 200 otherwise; it records the Authorization it got.
    const received: Array<string> = []
    const modelApi = HttpClient.make((request) =>
      Effect.gen(function*() {
        received.push(request.headers["authorization"] ?? "")
        if (request.url.endsWith("/down")) {
          return yield* new HttpClientError.RequestError({ request, reason: "Transport", description: "connect ECONNREFUSED" })
        }
        return HttpClientResponse.fromWeb(request, new Response("{}", { status: request.url.endsWith("/fail") ? 500 : 200 }))
      })
    )
    const client = AuthHttpClient.wrap(modelApi, resolver, "acme")
    const logs: Array<string> = []
    const down = yield* Effect.exit(client.execute(HttpClientRequest.post("/down"))).pipe(Effect.provide(captureLogs(logs)))
    const failed = yield* Effect.exit(
      Effect.flatMap(client.execute(HttpClientRequest.post("/fail")), HttpClientResponse.filterStatusOk)
    ).pipe(Effect.provide(captureLogs(logs)))
    const ok = yield* client.execute(HttpClientRequest.get("/models"))
    expect(received).toEqual([`Bearer ${CANARY.access}`, `Bearer ${CANARY.access}`, `Bearer ${CANARY.access}`])
    expect(Exit.isFailure(down) && Option.getOrUndefined(Cause.failureOption(down.cause))?._tag).toBe("RequestError")
    expect(Exit.isFailure(failed) && Option.getOrUndefined(Cause.failureOption(failed.cause))?._tag).toBe("ResponseError")
    expect(util.inspect(Exit.isFailure(down) ? Cause.squash(down.cause) : undefined)).toContain("llm.acme.example/v1/down")
    let checked = checkFailure("RequestError", down, logs) + checkFailure("ResponseError", failed, [])
    for (const [form, text] of forms(ok)) {
      noCanary(`200 response: ${form}`, text)
      checked++
    }
    t.note(`the bearer reached the model API 3 times; ${checked} texts of the errors and the response clean`)
  }).pipe(Effect.provide(servicesLayer())))
