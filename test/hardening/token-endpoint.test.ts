/**
 * Hardening, token-endpoint faults: a stored login in the real file store (a temporary
 * `credentials.json`), a forced refresh through `Refresher` with the product's own retry
 * policy, and the fake server's fault injection on every refresh request. The server counts
 * the calls: retries stay within their bound (1 + 4). The file is byte-for-byte what it was,
 * and the error says what happened. Faults injected after the server acted (it rotated the
 * refresh token) are at the end: a held answer is saved, a lost one costs the login and the
 * message says so. Time is the TestClock, moved forward by the test.
 */
import { Cause, DateTime, Duration, Effect, Exit, Fiber, Option, Redacted, TestClock } from "effect"
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
    // The tokens are kept as they were; the refusal is remembered beside them.
    const before = JSON.parse(r.before).credentials[0]
    const after = JSON.parse(r.after).credentials[0]
    expect(after.tokens).toEqual(before.tokens)
    expect(after.refusal.reason).toBe("invalid_grant")
    t.note(`1 call, tokens kept, refusal remembered, ReauthRequired naming \`agent-auth login acme\``)
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

// ---------------------------------------------------------------------------------------
// Faults after the server acted: it rotated the refresh token, then its answer was delayed
// or lost. A held answer that arrives is saved whatever happens to the caller; one that
// never arrives cannot be saved by anything on this machine — the old refresh token is
// spent at the server, and the new one exists only in the lost answer.

const NEW_LOGIN = "agent-auth login acme"

/** The stored login's tokens, from the file. */
const storedTokens = (home: string) => {
  const file = JSON.parse(fs.readFileSync(path.join(home, "credentials.json"), "utf8")) as {
    credentials: Array<{ tokens: { accessToken: string; refreshToken: string }; refusal?: { reason: string } }>
  }
  return file.credentials[0]!
}

/** The answer to the first refresh is lost after the server rotated: the login is lost, and the message says why and what to run. */
const lostAfterRotation = (title: string, fault: FakeAuthServer.Fault) =>
  faults.effect(`${title} after the server rotated (answer lost)`, "lost", (t) =>
    withHome((home) => Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const fake = yield* FakeAuthServer.FakeAuthServer
      const refresher = yield* Refresher.Refresher
      const issued = yield* seed
      yield* fake.resetCounts
      yield* fake.inject(fault, { times: 1, grant: "refresh_token", afterProcessing: true })
      const { exit } = yield* driveClock(refresher.fresh(KEY, { force: true }))
      const e = failureOf(exit)
      // The server did rotate: the refresh token we hold is spent there.
      expect(yield* fake.isActive(issued.refresh_token)).toBe(false)
      expect(e?._tag).toBe("ReauthRequired")
      expect(e?.message).toContain("its answer was lost")
      expect(e?.message).toContain("nothing on this machine can recover it")
      expect(e?.message).toContain(NEW_LOGIN)
      // Remembered: the next call fails at once, with no request.
      const calls = (yield* fake.counts).refreshToken
      const again = yield* Effect.exit(refresher.fresh(KEY))
      expect(failureOf(again)?._tag).toBe("ReauthRequired")
      expect((yield* fake.counts).refreshToken).toBe(calls)
      expect(storedTokens(home).refusal?.reason).toBeDefined()
      t.note(`${calls} calls; login lost at the server; "${(e as { lostAnswer?: string } | undefined)?.lostAnswer}" named, \`${NEW_LOGIN}\` asked for, refusal remembered`)
    })))

lostAfterRotation("timeout (answer held 2 minutes)", FakeAuthServer.Fault.delay("2 minutes"))
lostAfterRotation("connection reset", FakeAuthServer.Fault.connectionReset)
lostAfterRotation("HTTP 500", FakeAuthServer.Fault.status(500))
lostAfterRotation("garbage (truncated JSON)", FakeAuthServer.Fault.malformedJson)

faults.effect("answer held 10 s after the server rotated, the caller interrupted at 1 s: saved", "survived", (t) =>
  withHome((home) => Effect.gen(function*() {
    yield* TestClock.setTime(NOW)
    const fake = yield* FakeAuthServer.FakeAuthServer
    const refresher = yield* Refresher.Refresher
    const issued = yield* seed
    yield* fake.resetCounts
    yield* fake.inject(FakeAuthServer.Fault.delay("10 seconds"), { times: 1, grant: "refresh_token", afterProcessing: true })
    const caller = yield* Effect.fork(refresher.fresh(KEY, { force: true }))
    yield* driveClock(TestClock.adjust("1 second"))
    yield* Fiber.interrupt(caller)
    // The refresh goes on without its caller; a forced call meanwhile joins it (no second
    // request) and gets the answer when it arrives, saved.
    const { exit } = yield* driveClock(refresher.fresh(KEY, { force: true }))
    expect(Exit.isSuccess(exit)).toBe(true)
    const saved = storedTokens(home).tokens
    expect(saved.refreshToken).not.toBe(issued.refresh_token)
    expect(yield* fake.isActive(saved.refreshToken)).toBe(true)
    expect(yield* fake.isActive(issued.refresh_token)).toBe(false)
    expect((yield* fake.counts).refreshToken).toBe(1)
    t.note("1 call; the rotated refresh token saved; the next fresh uses it, no replay")
  })))
