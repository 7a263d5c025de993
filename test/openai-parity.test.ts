/**
 * OpenAI parity with the Codex CLI (issue 6), against the fake authorization server in its
 * `openai` flavor on a real 127.0.0.1 socket, with the issuer overridden in config.json:
 * browser, device and pasted-code logins; refresh with OpenAI's JSON body and rotation; the
 * refusals that force a new login; revocation with Codex's body on logout; the claims in
 * `status`; the Codex store (`AGENT_AUTH_STORE=codex`) and `import codex` against files in
 * every Codex shape, judged by Codex's own rules; busy ports (1455, then 1457; a stale
 * agent-auth login on the port is asked to stop).
 *
 * Bodies are checked on the server side: the token and revocation endpoints are overridden
 * to a recording proxy in front of the fake server. The registered ports 1455/1457 are not
 * bound here (other suites may run at the same time): tests use ports of their own, and
 * the defaults are checked on the provider.
 */
import { AuthConfig, BrowserLauncher, CallbackServer, LoginCancelled, PkceFlow, PortUnavailable, Provider, Refresher, TokenStore } from "@agent-auth/core"
import type { AuthConfig as AuthConfigNs } from "@agent-auth/core"
import { NodeAuth, NodeCallbackServer } from "@agent-auth/node"
import { FakeAuthServer } from "@agent-auth/testing"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Queue, Redacted, Scope, TestClock } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as path from "node:path"
import { bundle, cliEnv, finish, followAuthorization, nextEvent, run, start, tempHome } from "./support/cli.js"
import {
  chatgptTokens,
  codexProblems,
  codexShapes,
  modeOf,
  readJson,
  type RecordingProxy,
  recordingProxy,
  writeAuthJson
} from "./support/codex.js"
import { freePort } from "./support/demo.js"
import { ISSUER, servicesLayer } from "./support/services.js"
import { serveForFile } from "./support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
let proxy: RecordingProxy

serveForFile({ flavor: "openai", accessTokenTtl: "1 hour", deviceInterval: "1 second" }, (server) => (fake = server))
beforeAll(async () => {
  proxy = await recordingProxy(fake.issuer)
})
afterAll(() => proxy.close())

/** config.json's openai entry: the fake issuer, token and revocation through the recording proxy, any free port. */
const openaiConfig = (extra: Record<string, unknown> = {}) => ({
  issuer: fake.issuer,
  redirect: { ports: [0] },
  endpoints: { token: `${proxy.url}/oauth/token`, revocation: `${proxy.url}/oauth/revoke` },
  ...extra
})

const homeWithOpenAi = (extra: Record<string, unknown> = {}) => {
  const home = tempHome()
  fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { openai: openaiConfig(extra) } }))
  return home
}

const recorded = (p: string) => proxy.requests.filter((r) => r.path === p)
const parseBody = (body: string) => JSON.parse(body) as Record<string, string>
const events = (stdout: string) => stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
const isActive = (token: string) => Effect.runPromise(fake.isActive(token))

/** `login openai` as a person does it: run the CLI, follow the printed URL like a browser. */
const browserLogin = async (env: Record<string, string>, args: ReadonlyArray<string> = []) => {
  const child = start(["login", "openai", "--no-browser", "--json", ...args], env)
  const done = finish(child)
  const url = await nextEvent(child, "authorization_url")
  const page = await followAuthorization(String(url.url))
  expect(page.status).toBe(200)
  return { result: await done, url }
}

/** The login stored in a credentials.json (file store). */
const storedLogin = (home: string) => {
  const json = readJson(path.join(home, "credentials.json")) as { credentials: Array<Record<string, any>> }
  return json.credentials.find((c) => c.provider === "openai")!
}

const user = FakeAuthServer.defaultUser

// ---------------------------------------------------------------------------------------

describe("OpenAI browser login, refresh, revocation (CLI, file store)", () => {
  it("login → status (account id, plan, org, email) → refresh (JSON body, rotation) → logout (Codex's revocation body)", async () => {
    const home = homeWithOpenAi()
    const env = cliEnv(home)
    const { result, url } = await browserLogin(env)
    expect(result.code).toBe(0)
    // The Codex CLI's authorization request.
    const authorize = new URL(String(url.url))
    expect(authorize.origin + authorize.pathname).toBe(`${fake.issuer}/oauth/authorize`)
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
      client_id: FakeAuthServer.openaiClientId,
      scope: "openid profile email offline_access",
      code_challenge_method: "S256",
      id_token_add_organizations: "true",
      codex_cli_simplified_flow: "true",
      originator: Provider.ORIGINATOR
    })
    expect(String(url.redirect_uri)).toMatch(/^http:\/\/localhost:\d+\/auth\/callback$/)
    const loggedIn = events(result.stdout).find((e) => e.event === "logged_in")!
    expect(loggedIn).toMatchObject({ provider: "openai", account: user.openai.chatgpt_account_id })

    const status = await run(["status", "openai"], env)
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(user.email)
    expect(status.stdout).toContain(`account ${user.openai.chatgpt_account_id}`)
    expect(status.stdout).toContain(`Plan: ${user.openai.chatgpt_plan_type}`)
    expect(status.stdout).toContain(`Organization: ${user.openai.organization_id}`)
    const statusJson = JSON.parse((await run(["status", "openai", "--json"], env)).stdout)
    expect(statusJson.providers[0].credentials[0]).toMatchObject({
      source: "oauth",
      email: user.email,
      plan: user.openai.chatgpt_plan_type,
      organization: user.openai.organization_id,
      account_id: user.openai.chatgpt_account_id
    })
    const first = storedLogin(home)
    expect(status.stdout + status.stderr).not.toContain(first.tokens.accessToken)
    expect(status.stdout + status.stderr).not.toContain(first.tokens.refreshToken)

    // The model call's headers: ChatGPT-Account-Id from the verified ID token.
    const credential = JSON.parse((await run(["token", "openai", "--json"], env)).stdout)
    expect(credential.headers["ChatGPT-Account-Id"]).toBe(user.openai.chatgpt_account_id)
    expect(credential.base_url).toBe("https://chatgpt.com/backend-api/codex")

    // Refresh: OpenAI's JSON body, and the refresh token rotates (the old one is spent).
    const before = recorded("/oauth/token").length
    const refreshed = await run(["refresh", "openai"], env)
    expect(refreshed.code).toBe(0)
    const refreshRequest = recorded("/oauth/token").slice(before).at(-1)!
    expect(refreshRequest.contentType).toContain("application/json")
    expect(parseBody(refreshRequest.body)).toEqual({
      client_id: FakeAuthServer.openaiClientId,
      grant_type: "refresh_token",
      refresh_token: first.tokens.refreshToken
    })
    const second = storedLogin(home)
    expect(second.tokens.refreshToken).not.toBe(first.tokens.refreshToken)
    expect(await isActive(second.tokens.refreshToken)).toBe(true)
    expect(await isActive(first.tokens.refreshToken)).toBe(false)

    // Logout revokes with Codex's body: JSON {token, token_type_hint, client_id}.
    const out = await run(["logout", "openai"], env)
    expect(out.code).toBe(0)
    expect(out.stderr).toContain("Revoked")
    const revoke = recorded("/oauth/revoke").at(-1)!
    expect(revoke.contentType).toContain("application/json")
    expect(parseBody(revoke.body)).toEqual({
      token: second.tokens.refreshToken,
      token_type_hint: "refresh_token",
      client_id: FakeAuthServer.openaiClientId
    })
    expect(await isActive(second.tokens.refreshToken)).toBe(false)
    expect(await isActive(second.tokens.accessToken)).toBe(false)
  }, 90_000)

  it("the refusals that force a new login exit 1 (ReauthRequired): refresh_token_reused, refresh_token_invalidated", async () => {
    const home = homeWithOpenAi()
    const env = cliEnv(home)
    expect((await browserLogin(env)).result.code).toBe(0)
    const file = path.join(home, "credentials.json")
    const copy = fs.readFileSync(file, "utf8")
    expect((await run(["refresh", "openai"], env)).code).toBe(0)
    // A second holder of the first refresh token (what `import codex` warns about) uses it again.
    fs.writeFileSync(file, copy, { mode: 0o600 })
    const reused = await run(["refresh", "openai"], env)
    expect(reused.code).toBe(1)
    expect(reused.stderr).toContain("refresh_token_reused")
    expect(reused.stderr).toContain("agent-auth login openai")

    const home2 = homeWithOpenAi()
    const env2 = cliEnv(home2)
    expect((await browserLogin(env2)).result.code).toBe(0)
    await Effect.runPromise(fake.revokeGrantOf(storedLogin(home2).tokens.refreshToken))
    const invalidated = await run(["refresh", "openai"], env2)
    expect(invalidated.code).toBe(1)
    expect(invalidated.stderr).toContain("refresh_token_invalidated")
  }, 90_000)
})

describe("OpenAI refusals under TestClock (library)", () => {
  const layer = servicesLayer({
    fake: { flavor: "openai", refreshTokenTtl: "2 hours", accessTokenTtl: "1 hour" },
    file: { providers: { openai: { issuer: ISSUER } } }
  })

  /** A stored openai login through the in-memory fake: start → authorize → complete. */
  const loggedIn = Effect.gen(function*() {
    const flow = yield* PkceFlow.PkceFlow
    const fakeServer = yield* FakeAuthServer.FakeAuthServer
    const pending = yield* flow.start("openai", { redirectUri: "http://localhost:1455/auth/callback" })
    const response = yield* fakeServer.client.get(pending.authorizationUrl).pipe(Effect.scoped)
    return yield* flow.complete(pending, PkceFlow.parseCallbackInput(response.headers["location"]!))
  })

  it.effect("refresh_token_expired, _reused and _invalidated each become ReauthRequired naming the code", () =>
    Effect.gen(function*() {
      const refresher = yield* Refresher.Refresher
      const store = yield* TokenStore.TokenStore
      const fakeServer = yield* FakeAuthServer.FakeAuthServer
      const key = { provider: "openai", account: user.openai.chatgpt_account_id }

      // reused: rotate once, then present the first refresh token again.
      const login = yield* loggedIn
      const rotated = yield* refresher.fresh(key, { force: true })
      expect(Redacted.value(rotated.tokens.refreshToken!)).not.toBe(Redacted.value(login.tokens.refreshToken!))
      yield* store.set(login)
      const reused = yield* Effect.flip(refresher.fresh(key, { force: true }))
      expect(reused).toMatchObject({ _tag: "ReauthRequired", reason: "refresh_token_reused" })

      // invalidated: the grant was revoked at the provider.
      const again = yield* loggedIn
      yield* fakeServer.revokeGrantOf(again.tokens.refreshToken!)
      const invalidated = yield* Effect.flip(refresher.fresh(key, { force: true }))
      expect(invalidated).toMatchObject({ _tag: "ReauthRequired", reason: "refresh_token_invalidated" })

      // expired: the refresh token's lifetime passed (TestClock); nothing is deleted.
      yield* loggedIn
      yield* TestClock.adjust("2 hours")
      const expired = yield* Effect.flip(refresher.fresh(key))
      expect(expired).toMatchObject({ _tag: "ReauthRequired", reason: "refresh_token_expired" })
      expect(Option.isSome(yield* store.get(key))).toBe(true)
    }).pipe(Effect.provide(layer)))
})

// ---------------------------------------------------------------------------------------

describe("OpenAI device login (CLI)", () => {
  it("login openai --device --json: the code is shown, approved over HTTP, and the login stored", async () => {
    const home = homeWithOpenAi()
    const env = cliEnv(home)
    const child = start(["login", "openai", "--device", "--json"], env)
    const done = finish(child)
    const code = await nextEvent(child, "device_code")
    expect(code.verification_uri).toBe(`${fake.issuer}/codex/device`)
    expect(typeof code.user_code).toBe("string")
    expect(code.expires_in).toBe(15 * 60)
    const approve = await fetch(`${fake.endpoints.deviceVerification}?user_code=${encodeURIComponent(String(code.user_code))}&approve=1`)
    expect(approve.status).toBe(200)
    const result = await done
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(String(code.user_code))
    expect(events(result.stdout).find((e) => e.event === "logged_in")).toMatchObject({
      provider: "openai",
      account: user.openai.chatgpt_account_id
    })
    // The device code is exchanged with OpenAI's device redirect URI.
    const exchange = recorded("/oauth/token").map((r) => new URLSearchParams(r.body)).reverse()
      .find((p) => p.get("grant_type") === "authorization_code" && p.get("redirect_uri")?.endsWith("/deviceauth/callback"))
    expect(exchange?.get("redirect_uri")).toBe(`${fake.issuer}/deviceauth/callback`)
  }, 90_000)

  it("a 404 on the user-code endpoint says device login must be enabled in the account's security settings", async () => {
    const home = homeWithOpenAi()
    await Effect.runPromise(fake.inject(FakeAuthServer.Fault.status(404), { endpoint: "device_authorization" }))
    const r = await run(["login", "openai", "--device"], cliEnv(home))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("security settings")
  }, 90_000)
})

// ---------------------------------------------------------------------------------------

/** The core services over the socket fake, a memory store, and the real loopback callback server. */
const libraryLayer = (openai: Record<string, unknown>) =>
  NodeAuth.services().pipe(
    Layer.provideMerge(Layer.mergeAll(
      AuthConfig.layerWith({ home: "/nonexistent", file: { providers: { openai: openai as AuthConfigNs.ProviderOverride } } }),
      TokenStore.layerMemory,
      FetchHttpClient.layer
    )),
    Layer.merge(NodeCallbackServer.layer),
    Layer.merge(BrowserLauncher.layerNone())
  )

/** What a browser that cannot reach the loopback does: follow the authorization URL, keep where it is sent. */
const redirectOf = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { redirect: "manual" })
    return response.headers.get("location")!
  })

/** A port nobody listens on right now. */
const freePortE = Effect.promise(() => freePort())

/** A port held by another program (not agent-auth), counting the connections it receives. */
const holdPort = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ server: net.Server; port: number; connections: () => number }>((resolve) => {
      let connections = 0
      const server = net.createServer((socket) => {
        connections++
        socket.destroy()
      })
      server.listen({ host: "127.0.0.1", port: 0 }, () =>
        resolve({ server, port: (server.address() as net.AddressInfo).port, connections: () => connections }))
    })
  ),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

describe("Pasted code with the openai provider (CLI on a pseudo-terminal)", () => {
  it("the paste prompt (terminal only) takes `code#state` when the browser cannot reach the loopback", async () => {
    const home = homeWithOpenAi()
    // `script` gives the CLI a terminal; what is written to its stdin is typed at the prompt.
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(bundle)} login openai --no-browser --json`
    const child = spawn("script", ["-qfec", command, "/dev/null"], { env: cliEnv(home), stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    let pasted = false
    const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no prompt: ${out}`)), 20_000)
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString()
        const url = /"event":"authorization_url","url":"([^"]+)"/.exec(out)?.[1]
        if (pasted || url === undefined || !/paste the redirect URL/i.test(out)) return
        pasted = true
        clearTimeout(timer)
        // The browser is elsewhere (SSH): it follows the URL and lands on a page that does not load.
        fetch(url, { redirect: "manual" }).then((r) => {
          const location = new URL(r.headers.get("location")!)
          child.stdin.write(`${location.searchParams.get("code")}#${location.searchParams.get("state")}\n`)
          resolve()
        }, reject)
      })
    })
    expect(await exit).toBe(0)
    expect(out).toContain("Logged in to OpenAI")
    expect(storedLogin(home).account).toBe(user.openai.chatgpt_account_id)
  }, 60_000)
})

describe("Pasted code with the openai provider (library: PkceFlow.login, real callback server)", () => {
  it.live("`code#state` pasted while the loopback waits completes the login; the state is still checked", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const lines = yield* Queue.unbounded<string>()
      const rejected: Array<string> = []
      const login = yield* flow.login("openai", {
        pasted: Queue.take(lines),
        onEvent: (e) =>
          e._tag === "AuthorizationUrl"
            ? Effect.gen(function*() {
              expect(e.redirectUri).toMatch(/^http:\/\/localhost:\d+\/auth\/callback$/)
              const location = new URL(yield* redirectOf(e.url))
              expect(location.origin + location.pathname).toBe(e.redirectUri)
              const code = location.searchParams.get("code")!
              yield* Queue.offer(lines, `${code}#forged-state`)
              yield* Queue.offer(lines, `${code}#${location.searchParams.get("state")}`)
            })
            : e._tag === "PasteRejected"
            ? Effect.sync(() => void rejected.push(e.reason))
            : Effect.void
      })
      expect(rejected).toEqual(["its state belongs to another login"])
      expect(login.account).toBe(user.openai.chatgpt_account_id)
      expect(login.claims).toMatchObject({ email: user.email, plan: user.openai.chatgpt_plan_type, organization: user.openai.organization_id })
    }).pipe(Effect.provide(libraryLayer({ issuer: fake.issuer, redirect: { ports: [0] } }))))

  it.live("both registered ports busy: the login goes on paste-only, and the full redirect URL completes it", () =>
    Effect.gen(function*() {
      const a = yield* holdPort
      const b = yield* holdPort
      yield* Effect.gen(function*() {
        const flow = yield* PkceFlow.PkceFlow
        const lines = yield* Queue.unbounded<string>()
        const seen: Array<string> = []
        const login = yield* flow.login("openai", {
          pasted: Queue.take(lines),
          onEvent: (e) =>
            Effect.gen(function*() {
              seen.push(e._tag)
              if (e._tag === "AuthorizationUrl") {
                // The redirect URI names the first registered port, as the registration requires.
                expect(e.redirectUri).toBe(`http://localhost:${a.port}/auth/callback`)
                yield* Queue.offer(lines, yield* redirectOf(e.url))
              }
              if (e._tag === "PasteOnly") expect(e.reason).toContain("--device")
            })
        })
        expect(seen).toContain("PasteOnly")
        expect(login.account).toBe(user.openai.chatgpt_account_id)
      }).pipe(Effect.provide(libraryLayer({ issuer: fake.issuer, redirect: { ports: [a.port, b.port] } })))
      // Programs that are not agent-auth are never contacted.
      expect(a.connections() + b.connections()).toBe(0)
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------------------

/** One GET to the loopback with exactly these headers (a program's request, or a browser's). */
const rawGet = (port: number, p: string, headers: Record<string, string> = {}) =>
  Effect.promise(() =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      http.request({
        host: "127.0.0.1",
        port,
        path: p,
        method: headers["x-method"] ?? "GET",
        agent: false,
        setHost: false,
        headers: { host: `127.0.0.1:${port}`, ...headers }
      }, (res) => {
        res.resume()
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
      }).on("error", reject).end()
    })
  )

const listenOn = (ports: ReadonlyArray<number>) =>
  Effect.flatMap(CallbackServer.CallbackServer, (s) => s.listen({ provider: "openai", host: "localhost", path: "/auth/callback", ports }))

const portOf = (listener: CallbackServer.Listener) => Number(new URL(listener.redirectUri).port)

/** Moves the TestClock in `step`s (letting socket I/O run between them) until `fiber` ends. */
const driveUntilDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, step: Duration.DurationInput, maxSteps = 200) =>
  Effect.gen(function*() {
    for (let i = 0; i < maxSteps && fiber.unsafePoll() === null; i++) {
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 2)))
      yield* TestClock.adjust(step)
    }
    return yield* Fiber.join(fiber)
  })

describe("Busy ports: 1455, then 1457; a stale agent-auth login on the port is asked to stop", () => {
  it("the openai registration's redirect: localhost, /auth/callback, ports 1455 then 1457", () => {
    expect(Provider.openai.redirect).toEqual({ host: "localhost", path: "/auth/callback", ports: [1455, 1457] })
  })

  it.scoped("our own login holding the port ends with LoginCancelled, and the new login takes the port", () =>
    Effect.gen(function*() {
      const p = yield* freePortE
      const q = yield* freePortE
      const oldScope = yield* Scope.make()
      const old = yield* listenOn([p]).pipe(Scope.extend(oldScope))
      const oldWait = yield* Effect.fork(old.awaitCallback("the-old-login-state"))
      const fresh = yield* Effect.fork(listenOn([p, q]))
      const listener = yield* driveUntilDone(fresh, "50 millis")
      expect(portOf(listener)).toBe(p)
      expect(yield* Effect.flip(Fiber.join(oldWait))).toBeInstanceOf(LoginCancelled)
      yield* Scope.close(oldScope, Exit.void)
      // The new server is the one answering now.
      expect((yield* rawGet(p, "/")).headers["x-agent-auth"]).toBe("callback")
    }).pipe(Effect.provide(NodeCallbackServer.layer)))

  it.scoped("a login of ours that cannot stop (already finishing) keeps its port: after the bounded wait (TestClock) the next port", () =>
    Effect.gen(function*() {
      const p = yield* freePortE
      const q = yield* freePortE
      const old = yield* listenOn([p])
      const oldWait = yield* Effect.fork(old.awaitCallback("finishing-state"))
      yield* Effect.yieldNow()
      expect((yield* rawGet(p, "/auth/callback?code=c&state=finishing-state")).status).toBe(200)
      yield* Fiber.join(oldWait)
      const fresh = yield* Effect.fork(listenOn([p, q]))
      // 2 s of retries on the Clock: not before.
      for (let i = 0; i < 30; i++) {
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 2)))
        yield* TestClock.adjust("50 millis")
      }
      expect(fresh.unsafePoll()).toBeNull()
      const listener = yield* driveUntilDone(fresh, "100 millis")
      expect(portOf(listener)).toBe(q)
    }).pipe(Effect.provide(NodeCallbackServer.layer)))

  it.scoped("a port held by another program is never contacted: the next port, then PortUnavailable offering --device (not --no-browser, which binds the same port)", () =>
    Effect.gen(function*() {
      const a = yield* holdPort
      const b = yield* holdPort
      const q = yield* freePortE
      const listener = yield* listenOn([a.port, q])
      expect(portOf(listener)).toBe(q)
      const e = yield* Effect.flip(listenOn([a.port, b.port]))
      expect(e).toBeInstanceOf(PortUnavailable)
      expect(e.ports).toEqual([a.port, b.port])
      expect(e.message).toContain(String(a.port))
      expect(e.message).toContain("--device")
      expect(e.message).not.toContain("--no-browser") // it would bind the same port
      expect(a.connections() + b.connections()).toBe(0)
    }).pipe(Effect.provide(NodeCallbackServer.layer)))

  it.scoped("GET /cancel: only with the login's secret (else 404, the login goes on); refused from web pages, non-loopback Host or other methods", () =>
    Effect.gen(function*() {
      // A fixed port: such a login records its pid and cancel secret in the private folder.
      const listener = yield* listenOn([yield* freePortE])
      const port = portOf(listener)
      const secret = NodeCallbackServer.recordedCancelSecret(port)
      expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
      const withSecret = { [NodeCallbackServer.cancelHeader]: secret! }
      const waiting = yield* Effect.fork(listener.awaitCallback("state-1"))
      yield* Effect.yieldNow()
      // A plain program GET (as Codex sends it), or a wrong secret: nothing here.
      expect((yield* rawGet(port, "/cancel")).status).toBe(404)
      expect((yield* rawGet(port, "/cancel", { [NodeCallbackServer.cancelHeader]: `${secret!.slice(1)}x` })).status).toBe(404)
      expect((yield* rawGet(port, "/cancel", { ...withSecret, origin: "https://evil.example" })).status).toBe(403)
      expect((yield* rawGet(port, "/cancel", { ...withSecret, "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors" })).status).toBe(403)
      expect((yield* rawGet(port, "/cancel", { ...withSecret, referer: "https://evil.example/" })).status).toBe(403)
      expect((yield* rawGet(port, "/cancel", { ...withSecret, host: `evil.example:${port}` })).status).toBe(421)
      expect((yield* rawGet(port, "/cancel", { ...withSecret, "x-method": "POST" })).status).toBe(405)
      expect(waiting.unsafePoll()).toBeNull()
      const ok = yield* rawGet(port, "/cancel", withSecret)
      expect(ok.status).toBe(200)
      expect(ok.headers["x-agent-auth"]).toBe("callback")
      expect(yield* Effect.flip(Fiber.join(waiting))).toBeInstanceOf(LoginCancelled)
      // A finished login cannot be cancelled (409) and keeps its result.
      const done = yield* listenOn([yield* freePortE])
      const doneSecret = { [NodeCallbackServer.cancelHeader]: NodeCallbackServer.recordedCancelSecret(portOf(done))! }
      const doneWait = yield* Effect.fork(done.awaitCallback("state-2"))
      yield* Effect.yieldNow()
      expect((yield* rawGet(portOf(done), "/auth/callback?code=c2&state=state-2")).status).toBe(200)
      expect((yield* rawGet(portOf(done), "/cancel", doneSecret)).status).toBe(409)
      expect(Redacted.value((yield* Fiber.join(doneWait)).code)).toBe("c2")
    }).pipe(Effect.provide(NodeCallbackServer.layer)))

  it("CLI: a second `login openai` takes the port from a stale one, which exits 130 saying it was cancelled", async () => {
    const p = await freePort()
    const q = await freePort()
    const home = homeWithOpenAi({ redirect: { ports: [p, q] } })
    const env = cliEnv(home)
    const stale = start(["login", "openai", "--no-browser", "--json"], env)
    const staleDone = finish(stale)
    const staleUrl = await nextEvent(stale, "authorization_url")
    expect(String(staleUrl.redirect_uri)).toBe(`http://localhost:${p}/auth/callback`)
    const { result, url } = await browserLogin(env)
    expect(String(url.redirect_uri)).toBe(`http://localhost:${p}/auth/callback`)
    expect(result.code).toBe(0)
    const old = await staleDone
    expect(old.code).toBe(130)
    expect(old.stderr).toContain("cancelled")
    expect(storedLogin(home).account).toBe(user.openai.chatgpt_account_id)
  }, 90_000)
})

// ---------------------------------------------------------------------------------------

const codexEnv = (home: string, codexHome: string, extra: Record<string, string> = {}) =>
  cliEnv(home, { AGENT_AUTH_STORE: "codex", CODEX_HOME: codexHome, ...extra })

describe("AGENT_AUTH_STORE=codex: one login shared with the Codex CLI", () => {
  it("login writes Codex's auth.json; status and token read it; refresh rewrites it in place; a Codex refresh is seen; logout revokes and deletes it", async () => {
    const home = homeWithOpenAi()
    const codexHome = path.join(home, "codex")
    const file = path.join(codexHome, "auth.json")
    const env = codexEnv(home, codexHome)
    const { result } = await browserLogin(env)
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(file)
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)

    // Codex's rules, and Codex's exact fields.
    expect(codexProblems(fs.readFileSync(file, "utf8"))).toEqual([])
    expect(modeOf(file)).toBe(0o600)
    const json = readJson(file) as Record<string, any>
    expect(Object.keys(json)).toEqual(["auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh"])
    expect(json.auth_mode).toBe("chatgpt")
    expect(json.OPENAI_API_KEY).toBe(null)
    expect(Object.keys(json.tokens)).toEqual(["id_token", "access_token", "refresh_token", "account_id"])
    expect(json.tokens.account_id).toBe(user.openai.chatgpt_account_id)

    const status = await run(["status", "openai"], env)
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(user.email)
    expect(status.stdout).toContain(`Plan: ${user.openai.chatgpt_plan_type}`)
    expect(status.stdout).toContain(file)
    expect(status.stdout + status.stderr).not.toContain(json.tokens.access_token)
    const token = await run(["token", "openai"], env)
    expect(token.stdout).toBe(`${json.tokens.access_token}\n`)

    // A newer Codex's fields survive our refresh; the refresh token rotates in the file.
    fs.writeFileSync(file, JSON.stringify({ ...json, future_field: { x: 1 }, tokens: { ...json.tokens, future_token_field: "kept" } }), { mode: 0o600 })
    expect((await run(["refresh", "openai"], env)).code).toBe(0)
    const after = readJson(file) as Record<string, any>
    expect(codexProblems(fs.readFileSync(file, "utf8"))).toEqual([])
    expect(modeOf(file)).toBe(0o600)
    expect(after.tokens.refresh_token).not.toBe(json.tokens.refresh_token)
    expect(await isActive(after.tokens.refresh_token)).toBe(true)
    expect(after.future_field).toEqual({ x: 1 })
    expect(after.tokens.future_token_field).toBe("kept")
    expect(after.OPENAI_API_KEY).toBe(null)
    expect(after.last_refresh).not.toBe(json.last_refresh)

    // Codex refreshes (in place, its own way): we use its tokens, with no refresh of our own.
    const issued = await Effect.runPromise(fake.issueTokens({ clientId: FakeAuthServer.openaiClientId }))
    fs.writeFileSync(file, JSON.stringify({
      ...after,
      tokens: { ...after.tokens, access_token: issued.access_token, refresh_token: issued.refresh_token, id_token: issued.id_token }
    }), { mode: 0o600 })
    const before = recorded("/oauth/token").length
    expect((await run(["token", "openai"], env)).stdout).toBe(`${issued.access_token}\n`)
    expect(recorded("/oauth/token").length).toBe(before)

    const out = await run(["logout", "openai"], env)
    expect(out.code).toBe(0)
    expect(out.stderr).toContain("Revoked")
    expect(parseBody(recorded("/oauth/revoke").at(-1)!.body).token).toBe(issued.refresh_token)
    expect(fs.existsSync(file)).toBe(false)
  }, 90_000)

  it("other providers stay in credentials.json; an API-key login of openai is Codex's API-key shape", async () => {
    const home = homeWithOpenAi()
    const codexHome = path.join(home, "codex")
    const env = codexEnv(home, codexHome)
    expect((await run(["login", "anthropic", "--with-api-key"], env, "sk-ant-api-0123456789abcdef\n")).code).toBe(0)
    expect(fs.existsSync(path.join(codexHome, "auth.json"))).toBe(false)
    expect(readJson(path.join(home, "credentials.json")).credentials).toHaveLength(1)
    expect((await run(["login", "openai", "--with-api-key"], env, "sk-openai-key-0123456789\n")).code).toBe(0)
    const file = path.join(codexHome, "auth.json")
    expect(readJson(file)).toEqual({ auth_mode: "apikey", OPENAI_API_KEY: "sk-openai-key-0123456789" })
    expect(codexProblems(fs.readFileSync(file, "utf8"))).toEqual([])
    expect(modeOf(file)).toBe(0o600)
    expect((await run(["token", "openai"], env)).stdout).toBe("sk-openai-key-0123456789\n")
    expect((await run(["token", "anthropic"], env)).stdout).toBe("sk-ant-api-0123456789abcdef\n")
  }, 90_000)
})

// ---------------------------------------------------------------------------------------

describe("import codex", () => {
  const tokens = chatgptTokens()
  const shapes = codexShapes(tokens)
  const expected: Record<keyof typeof shapes, { kind: "chatgpt" | "api_key"; secret: string }> = {
    chatgpt: { kind: "chatgpt", secret: tokens.access_token },
    chatgptWithKey: { kind: "chatgpt", secret: tokens.access_token },
    absentTokens: { kind: "chatgpt", secret: tokens.access_token },
    absentKey: { kind: "api_key", secret: "sk-legacy-key-0123456789" },
    absentKeyAndTokens: { kind: "api_key", secret: "sk-legacy-key-0123456789" },
    apikey: { kind: "api_key", secret: "sk-apikey-login-0123456789" },
    unknownFields: { kind: "chatgpt", secret: tokens.access_token }
  }

  it("every Codex shape imports (auth_mode apikey / chatgpt / absent, with and without a key, unknown fields); the copy warns", async () => {
    for (const [name, content] of Object.entries(shapes) as Array<[keyof typeof shapes, unknown]>) {
      const home = tempHome()
      const codexHome = path.join(home, "codex")
      const file = writeAuthJson(codexHome, content)
      const original = fs.readFileSync(file, "utf8")
      const env = cliEnv(home, { CODEX_HOME: codexHome })
      const r = await run(["import", "codex", "--json"], env)
      expect(r.code, `${name}: ${r.stderr}`).toBe(0)
      expect(events(r.stdout)[0], name).toMatchObject({ event: "imported", provider: "openai", kind: expected[name].kind, from: file })
      for (const secret of [tokens.access_token, tokens.refresh_token, expected[name].secret]) expect(r.stderr).not.toContain(secret)
      if (expected[name].kind === "chatgpt") {
        expect(r.stderr, name).toContain("two copies of one login")
        expect(r.stderr, name).toContain("AGENT_AUTH_STORE=codex")
        const s = JSON.parse((await run(["status", "openai", "--json"], env)).stdout).providers[0].credentials[0]
        expect(s, name).toMatchObject({ source: "oauth", account: "acct-codex", account_id: "acct-codex", email: "codex@example.test", plan: "pro", organization: "org-codex" })
      } else {
        expect(r.stderr, name).not.toContain("two copies")
      }
      expect((await run(["token", "openai"], env)).stdout, name).toBe(`${expected[name].secret}\n`)
      // Import only reads Codex's file.
      expect(fs.readFileSync(file, "utf8"), name).toBe(original)
    }
  }, 90_000)

  it("--from PATH names the file; a live imported login refreshes on its own copy", async () => {
    const home = homeWithOpenAi()
    const issued = await Effect.runPromise(fake.issueTokens({ clientId: FakeAuthServer.openaiClientId }))
    const elsewhere = path.join(home, "elsewhere")
    const file = writeAuthJson(elsewhere, {
      auth_mode: "chatgpt",
      OPENAI_API_KEY: null,
      tokens: { id_token: issued.id_token, access_token: issued.access_token, refresh_token: issued.refresh_token, account_id: user.openai.chatgpt_account_id },
      last_refresh: "2026-01-01T00:00:00Z"
    })
    const env = cliEnv(home, { CODEX_HOME: path.join(home, "no-codex-here") })
    expect((await run(["import", "codex"], env)).code).toBe(2)
    const r = await run(["import", "codex", "--from", file], env)
    expect(r.code).toBe(0)
    expect(r.stderr).toContain(file)
    expect((await run(["refresh", "openai"], env)).code).toBe(0)
    // The Codex copy's refresh token is now spent: exactly what the warning says.
    expect(await isActive(issued.refresh_token!)).toBe(false)
  }, 90_000)

  it("a malformed file is a store error (exit 4) naming the file and the field; the file stays where it is, untouched", async () => {
    const variants: ReadonlyArray<[string, string]> = [
      [JSON.stringify({ ...shapes.chatgpt, tokens: { ...tokens, id_token: "opaque-id-token" } }), "tokens.id_token"],
      [JSON.stringify({ ...shapes.chatgpt, tokens: { ...tokens, refresh_token: undefined } }), "tokens.refresh_token"],
      [JSON.stringify({ ...shapes.chatgpt, OPENAI_API_KEY: 42 }), "OPENAI_API_KEY"],
      ["{ \"auth_mode\": ", "not JSON"]
    ]
    for (const [content, field] of variants) {
      const home = tempHome()
      const codexHome = path.join(home, "codex")
      const file = writeAuthJson(codexHome, content)
      const r = await run(["import", "codex"], cliEnv(home, { CODEX_HOME: codexHome }))
      expect(r.code, field).toBe(4)
      expect(r.stderr).toContain(file)
      expect(r.stderr).toContain(field)
      expect(r.stderr).not.toContain(tokens.refresh_token)
      expect(fs.readFileSync(file, "utf8")).toBe(content)
      expect(fs.readdirSync(codexHome)).toEqual(["auth.json"])
      expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
    }
  }, 90_000)

  it("with AGENT_AUTH_STORE=codex the login is already shared: nothing is copied", async () => {
    const home = tempHome()
    const codexHome = path.join(home, "codex")
    const file = writeAuthJson(codexHome, shapes.chatgpt)
    const original = fs.readFileSync(file, "utf8")
    const r = await run(["import", "codex"], codexEnv(home, codexHome))
    expect(r.code).toBe(0)
    expect(r.stderr).toContain("nothing to copy")
    expect(fs.readFileSync(file, "utf8")).toBe(original)
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
  }, 90_000)
})
