/**
 * Hardening, token-endpoint faults: a stored login in the real file store (a temporary
 * `credentials.json`), a forced refresh through `Refresher` with the product's own retry
 * policy, and the fake server's fault injection on every refresh request. The server counts
 * the calls: retries stay within their bound (1 + 4). The file is byte-for-byte what it was,
 * and the error says what happened. Time is the TestClock, moved forward by the test.
 */
import { Cause, DateTime, Duration, Effect, Exit, Option, Redacted, TestClock } from "effect"
import { Domain, Refresher, TokenStore } from "@agent-auth/core"
import { FakeAuthServer } from "@agent-auth/testing"
import { afterAll, expect } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { driveClock } from "./support/clock.js"
import { servicesLayer } from "./support/services.js"
import { area } from "./support/table.js"

const NOW = Date.UTC(2026, 0, 15, 9, 30, 0)
const KEY = { provider: "acme", account: "ada" }
/** The product's bound: the first call and 4 retries (Refresher.defaultRetryPolicy). */
const BOUND = 1 + Refresher.defaultRetryPolicy.retries

const homes: Array<string> = []
afterAll(() => homes.forEach((h) => fs.rmSync(h, { recursive: true, force: true })))

/** A login as the fake server issued it, stored in a fresh file store; returns the file's path. */
const seed = Effect.gen(function*() {
  const fake = yield* FakeAuthServer.FakeAuthServer
  const store = yield* TokenStore.TokenStore
  const issued = yield* fake.issueTokens()
  const now = DateTime.unsafeMake(NOW)
  yield* store.set(Domain.OAuthCredential.make({
    provider: KEY.provider,
    account: KEY.account,
    tokens: Domain.TokenSet.make({
      accessToken: Redacted.make(issued.access_token),
      refreshToken: Redacted.make(issued.refresh_token),
      expiresAt: DateTime.addDuration(now, Duration.seconds(issued.expires_in)),
      scopes: issued.scope.split(" "),
      tokenType: "Bearer"
    }),
    claims: Domain.AccountClaims.make({ email: FakeAuthServer.defaultUser.email }),
    obtainedAt: now
  }))
  return issued
})

interface Faulted {
  readonly fault: FakeAuthServer.Fault
  /** How many requests the fault hits (default: all of them). */
  readonly times?: number
}

/** A forced refresh under `fault`: its exit, the server's call count, the file before and after, test time spent. */
const refreshUnder = (home: string, { fault, times = 100 }: Faulted) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(NOW)
    const fake = yield* FakeAuthServer.FakeAuthServer
    const refresher = yield* Refresher.Refresher
    const issued = yield* seed
    const file = path.join(home, "credentials.json")
    const before = fs.readFileSync(file, "utf8")
    yield* fake.resetCounts
    yield* fake.inject(fault, { times, grant: "refresh_token" })
    const { elapsed, exit } = yield* driveClock(refresher.fresh(KEY, { force: true }))
    const calls = (yield* fake.counts).refreshToken
    return { exit, calls, before, after: fs.readFileSync(file, "utf8"), elapsed, issued }
  })

/** A case's own home folder and the services over it. */
const withHome = <A, E, R>(body: (home: string) => Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-hardening-token-"))
    homes.push(home)
    return body(home).pipe(Effect.provide(servicesLayer({ home })))
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const faults = area("token endpoint", import.meta.url)

/** A fault that never clears: the refresh fails after exactly BOUND calls, the file untouched. */
const exhausted = (
  title: string,
  fault: FakeAuthServer.Fault,
  expected: { readonly tag: string; readonly says: ReadonlyArray<string>; readonly minElapsed?: Duration.DurationInput }
) =>
  faults.effect(title, "survived", (t) =>
    withHome((home) => Effect.gen(function*() {
      const r = yield* refreshUnder(home, { fault })
      const e = failureOf(r.exit)
      expect(e?._tag).toBe(expected.tag)
      for (const words of expected.says) expect(e?.message).toContain(words)
      expect(r.calls).toBe(BOUND)
      expect(r.after).toBe(r.before)
      if (expected.minElapsed !== undefined) expect(r.elapsed).toBeGreaterThanOrEqual(Duration.toMillis(expected.minElapsed))
      // The old tokens still work at the server: nothing was spent.
      const fake = yield* FakeAuthServer.FakeAuthServer
      expect(yield* fake.isActive(r.issued.refresh_token)).toBe(true)
      t.note(`${r.calls} calls (bound ${BOUND}), file unchanged, ${e?._tag}: "${shorten(e?.message ?? "")}"`)
    })))

const shorten = (message: string) => message.replace(/^.*?(answered|: )/, "$1").replace(/^: /, "").replace(/\. Try again.*$|\. Check the network.*$/, "").slice(0, 70)

exhausted("HTTP 500", FakeAuthServer.Fault.status(500), {
  tag: "TokenEndpointError",
  says: ["HTTP 500", "server_error", "token endpoint http://127.0.0.1:9/"]
})

exhausted("HTTP 503", FakeAuthServer.Fault.status(503), {
  tag: "TokenEndpointError",
  says: ["HTTP 503", "temporarily_unavailable"]
})

exhausted("HTTP 429 with Retry-After: 20 (honoured between retries)", FakeAuthServer.Fault.rateLimited(20), {
  tag: "TokenEndpointError",
  says: ["HTTP 429", "rate_limited"],
  minElapsed: Duration.seconds(4 * 20)
})

exhausted("connection reset (no answer at all)", FakeAuthServer.Fault.connectionReset, {
  tag: "NetworkError",
  says: ["Could not talk to acme", "connection failed"]
})

exhausted("timeout (the server answers after 2 minutes)", FakeAuthServer.Fault.delay("2 minutes"), {
  tag: "NetworkError",
  says: ["no answer within 30s"],
  minElapsed: Duration.seconds(5 * 30)
})

exhausted("an HTML page instead of JSON (HTTP 200)", FakeAuthServer.Fault.html(200), {
  tag: "NetworkError",
  says: ["HTTP 200 with a body that is not JSON"]
})

exhausted("JSON without access_token", FakeAuthServer.Fault.missingAccessToken, {
  tag: "NetworkError",
  says: ["not a token response (no access_token)"]
})

exhausted("truncated JSON", FakeAuthServer.Fault.malformedJson, {
  tag: "NetworkError",
  says: ["not JSON"]
})

faults.effect("invalid_grant: a new login is asked for, not retried, the login kept", "survived", (t) =>
  withHome((home) => Effect.gen(function*() {
    const r = yield* refreshUnder(home, { fault: FakeAuthServer.Fault.invalidGrant })
    const e = failureOf(r.exit)
    expect(e?._tag).toBe("ReauthRequired")
    expect(e?.message).toContain("invalid_grant")
    expect(e?.message).toContain("agent-auth login acme")
    expect(r.calls).toBe(1)
    expect(r.after).toBe(r.before)
    t.note(`1 call, file unchanged, ReauthRequired naming \`agent-auth login acme\``)
  })))

faults.effect("two 500s, then an answer: refreshed within the bound", "survived", (t) =>
  withHome((home) => Effect.gen(function*() {
    const r = yield* refreshUnder(home, { fault: FakeAuthServer.Fault.status(500), times: 2 })
    expect(Exit.isSuccess(r.exit)).toBe(true)
    expect(r.calls).toBe(3)
    expect(r.after).not.toBe(r.before)
    const store = yield* TokenStore.TokenStore
    const stored = Option.getOrThrow(yield* store.get(KEY))
    expect(stored._tag === "OAuthCredential" && Redacted.value(stored.tokens.accessToken)).not.toBe(r.issued.access_token)
    t.note("3 calls, the new tokens stored")
  })))
