/**
 * Hardening, the loopback callback: the real `agent-auth login acme --no-browser --json`
 * (the CLI bundle, a child process) waits on its callback server while the fake
 * authorization server listens on another 127.0.0.1 port. Each case sends the attack to
 * the callback port, checks it was refused and the login is still waiting, then plays the
 * real browser redirect and checks the login completes and is stored.
 */
import { FakeAuthServer } from "@agent-auth/testing"
import { afterAll, expect } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { type CliResult, cliEnv, finish, nextEvent, start } from "../support/cli.js"
import { authorize, closedWithin, connects, homes, raw, rawStatus, slowLoris } from "./support/attack.js"
import { area } from "./support/table.js"
import { serveForFile } from "../support/fakeServer.js"
import { freePort } from "../support/demo.js"
import { run } from "../support/cli.js"
import * as net from "node:net"

let fake: FakeAuthServer.FakeAuthServerShape
const home = homes()
serveForFile({}, (server) => (fake = server))
afterAll(() => home.cleanup())

/** A login waiting for its browser: the CLI child, its callback port and the state it sent. */
const pendingLogin = async (extra: Record<string, unknown> = {}) => {
  const dir = home.acme(fake.issuer, fake.clientId, extra)
  const child = start(["login", "acme", "--no-browser", "--json"], cliEnv(dir))
  const done = finish(child)
  const event = await nextEvent(child, "authorization_url")
  const url = String(event.url)
  const redirect = new URL(String(event.redirect_uri))
  const state = new URL(url).searchParams.get("state")!
  expect(state.length).toBeGreaterThanOrEqual(43)
  return {
    home: dir,
    child,
    done,
    url,
    port: Number(redirect.port),
    callbackPath: redirect.pathname,
    state,
    stillWaiting: () => expect(child.exitCode).toBe(null)
  }
}

type Pending = Awaited<ReturnType<typeof pendingLogin>>

/** The browser comes back with the real redirect: the login must complete and be stored. */
const completes = async (login: Pending): Promise<CliResult> => {
  login.stillWaiting()
  const callback = await authorize(login.url)
  const page = await raw(login.port, new URL(callback).pathname + new URL(callback).search)
  expect(page.status).toBe(200)
  const r = await login.done
  expect(r.stderr).toContain("Logged in to")
  expect(r.code).toBe(0)
  const stored = JSON.parse(fs.readFileSync(path.join(login.home, "credentials.json"), "utf8"))
  expect(stored.credentials.map((c: { provider: string; account: string }) => `${c.provider}/${c.account}`)).toEqual([
    `acme/${FakeAuthServer.defaultUser.email}`
  ])
  return r
}

/** A short wait, so an answer the server might wrongly act on has time to end the login. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100))

const forgedState = "Zk3q9s8xVb2mT1nA0pLw7cYr4eUo6iHd5gJf3kQz8aB"

const callback = area("callback", import.meta.url)

callback.promise("wrong state (a forged redirect carrying an attacker's code)", "refused", async (t) => {
  const login = await pendingLogin()
  const forged = await raw(login.port, `${login.callbackPath}?code=attacker-code&state=${forgedState}&iss=${encodeURIComponent(fake.issuer)}`)
  expect(forged.status).toBe(400)
  expect(forged.body).toContain("state mismatch")
  await settle()
  await completes(login)
  t.note("HTTP 400; the real redirect then completed the login")
})

callback.promise("the right state replayed after success", "refused", async (t) => {
  // The first login completes; its redirect (code and state) is captured as an attacker would.
  const first = await pendingLogin()
  const captured = new URL(await authorize(first.url))
  const page = await raw(first.port, captured.pathname + captured.search)
  expect(page.status).toBe(200)
  expect((await first.done).code).toBe(0)
  const credentials = path.join(first.home, "credentials.json")
  const before = fs.readFileSync(credentials, "utf8")
  // Replayed to the same port: the login ended, nothing listens any more.
  expect(await connects(first.port)).toBe(false)
  // Replayed into the next login of the same user: another state, refused.
  const second = await pendingLogin()
  const replay = await raw(second.port, captured.pathname + captured.search)
  expect(replay.status).toBe(400)
  await settle()
  expect(fs.readFileSync(credentials, "utf8")).toBe(before)
  await completes(second)
  t.note("old port closed; into the next login HTTP 400, which then completed")
})

callback.promise("missing code (right state)", "refused", async (t) => {
  const login = await pendingLogin()
  const r = await raw(login.port, `${login.callbackPath}?state=${login.state}&iss=${encodeURIComponent(fake.issuer)}`)
  expect(r.status).toBe(400)
  const empty = await raw(login.port, `${login.callbackPath}?code=&state=${login.state}`)
  expect(empty.status).toBe(400)
  await settle()
  await completes(login)
  t.note("no code and empty code: HTTP 400; the login then completed")
})

callback.promise("error=access_denied with a description (legitimate: ends the login)", "refused", async (t) => {
  const login = await pendingLogin()
  const description = "The user declined the consent screen"
  const r = await raw(
    login.port,
    `${login.callbackPath}?error=access_denied&error_description=${encodeURIComponent(description)}&state=${login.state}`
  )
  expect(r.status).toBe(200)
  const result = await login.done
  expect(result.code).toBe(1)
  expect(result.stderr).toContain("access_denied")
  expect(result.stderr).toContain(description)
  expect(fs.existsSync(path.join(login.home, "credentials.json"))).toBe(false)
  t.note("AuthorizationDenied with the description, exit 1, nothing stored")
})

callback.promise("wrong path (right state and a code)", "refused", async (t) => {
  const login = await pendingLogin()
  const query = `?code=attacker-code&state=${login.state}`
  for (const target of ["/", `${login.callbackPath}/x`, `/other${query}`, `${login.callbackPath}x${query}`]) {
    expect((await raw(login.port, target)).status).toBe(404)
  }
  await settle()
  await completes(login)
  t.note("4 other paths: HTTP 404; the login then completed")
})

callback.promise("Host: evil.example (DNS rebinding), right state and a code", "refused", async (t) => {
  const login = await pendingLogin()
  const target = `${login.callbackPath}?code=attacker-code&state=${login.state}&iss=${encodeURIComponent(fake.issuer)}`
  for (const host of ["evil.example", `evil.example:${login.port}`, `127.0.0.1.evil.example:${login.port}`, `localhost:${login.port + 1}`]) {
    expect((await raw(login.port, target, { host })).status).toBe(421)
  }
  await settle()
  await completes(login)
  t.note("4 foreign Host headers: HTTP 421; the login then completed")
})

callback.promise("the callback port on other addresses (127.0.0.2, ::1)", "refused", async (t) => {
  const login = await pendingLogin()
  expect(await connects(login.port, "127.0.0.2")).toBe(false)
  expect(await connects(login.port, "::1")).toBe(false)
  await completes(login)
  t.note("bound to 127.0.0.1 only: both connections refused")
})

callback.promise("a second client while the login is pending", "refused", async (t) => {
  const login = await pendingLogin()
  // Another local client keeps a connection open and tries its own code, as GET and as POST.
  const idle = await slowLoris(login.port, "/")
  const attempts = await Promise.all([
    raw(login.port, `${login.callbackPath}?code=second-client-code&state=${forgedState}`),
    raw(login.port, `${login.callbackPath}?code=second-client-code&state=${login.state}`, { method: "POST" }),
    raw(login.port, `${login.callbackPath}?code=second-client-code&state=${login.state}&state=${forgedState}`)
  ])
  expect(attempts.map((a) => a.status)).toEqual([400, 405, 400])
  await settle()
  await completes(login)
  idle.destroy()
  t.note("guessed state 400, POST 405, repeated state 400; the login then completed")
})

callback.promise("an oversize query string (and oversize headers)", "refused", async (t) => {
  const login = await pendingLogin()
  const big = await raw(login.port, `${login.callbackPath}?code=${"A".repeat(9_000)}&state=${login.state}`)
  expect(big.status).toBe(414)
  const headers = await rawStatus(
    login.port,
    `GET ${login.callbackPath}?state=${login.state} HTTP/1.1\r\nHost: 127.0.0.1:${login.port}\r\nx-pad: ${"B".repeat(20_000)}\r\n\r\n`
  )
  expect(headers).toBe(431)
  await settle()
  await completes(login)
  t.note("9 KB query HTTP 414, 20 KB header HTTP 431; the login then completed")
})

callback.promise("a slow-loris connection that never finishes its headers", "survived", async (t) => {
  const login = await pendingLogin()
  const sockets = await Promise.all(Array.from({ length: 5 }, () => slowLoris(login.port, `${login.callbackPath}?state=${login.state}`)))
  await settle()
  const startedAt = Date.now()
  await completes(login)
  // The login ended without waiting for them, and took their connections down with it.
  const closed = await Promise.all(sockets.map((s) => closedWithin(s, 2_000)))
  expect(closed.every((c) => c)).toBe(true)
  expect(Date.now() - startedAt).toBeLessThan(4_000)
  t.note(`5 half-sent requests held open; login completed in ${Date.now() - startedAt} ms, all 5 dropped`)
})

/** Another local user's listener on `[::1]:port`, counting the connections it receives. */
const holdIpv6 = (port: number) =>
  new Promise<{ readonly close: () => Promise<void>; readonly connections: () => number }>((resolve, reject) => {
    let connections = 0
    const server = net.createServer((socket) => {
      connections++
      socket.destroy()
    })
    server.once("error", reject)
    server.listen({ host: "::1", port, ipv6Only: true }, () =>
      resolve({ close: () => new Promise((done) => server.close(() => done())), connections: () => connections }))
  })

callback.promise("[::1]:port taken by another listener (redirect host localhost)", "refused", async (t) => {
  const port = await freePort()
  const other = await holdIpv6(port)
  try {
    const dir = home.acme(fake.issuer, fake.clientId, { redirect: { host: "localhost", ports: [port] } })
    const r = await run(["login", "acme", "--no-browser"], cliEnv(dir))
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(`Port ${port} on 127.0.0.1 and [::1] is in use`)
    expect(r.stderr).not.toContain("Open this URL")
    // Refused before listening: 127.0.0.1 was given back, the other listener never contacted.
    expect(await connects(port)).toBe(false)
    expect(other.connections()).toBe(0)
    t.note(`exit 3 before any URL, PortUnavailable naming 127.0.0.1 and [::1]; 127.0.0.1:${port} released`)
  } finally {
    await other.close()
  }
})

callback.promise("both addresses bound for a localhost redirect", "refused", async (t) => {
  const port = await freePort()
  const login = await pendingLogin({ redirect: { host: "localhost", ports: [port] } })
  expect(login.port).toBe(port)
  expect(await connects(port, "::1")).toBe(true)
  expect(await connects(port, "127.0.0.1")).toBe(true)
  await completes(login)
  t.note("127.0.0.1 and [::1] both held by the login; it then completed")
})

callback.promise("GET /cancel without the login's secret (and with a wrong one)", "refused", async (t) => {
  const port = await freePort()
  const login = await pendingLogin({ redirect: { host: "localhost", ports: [port] } })
  const plain = await raw(port, "/cancel")
  expect(plain.status).toBe(404)
  const wrong = await raw(port, "/cancel", { headers: { "x-agent-auth-cancel": "A".repeat(43) } })
  expect(wrong.status).toBe(404)
  const v6 = await raw(port, "/cancel", { address: "::1", host: `[::1]:${port}` })
  expect(v6.status).toBe(404)
  await settle()
  await completes(login)
  t.note("HTTP 404 three times (no secret, wrong secret, over ::1); the login then completed")
})

callback.promise("the authorization URL on a command line (BROWSER records its argv)", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  const record = path.join(dir, "browser-argv")
  const script = path.join(dir, "fake-browser.sh")
  fs.writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' "$0" "$@" > "${record}"\n`, { mode: 0o700 })
  const child = start(["login", "acme", "--json"], cliEnv(dir, { BROWSER: `${script} --new-window`, DISPLAY: ":0" }))
  const done = finish(child)
  const event = await nextEvent(child, "authorization_url")
  const redirect = new URL(String(event.redirect_uri))
  for (let i = 0; i < 200 && !fs.existsSync(record); i++) await new Promise((r) => setTimeout(r, 50))
  const argv = fs.readFileSync(record, "utf8").trimEnd().split("\n")
  expect(argv.slice(0, 2)).toEqual([script, "--new-window"])
  for (const word of argv) {
    expect(word).not.toContain("state=")
    expect(word).not.toContain("code_challenge=")
  }
  // What it was given is a private page that leads to the URL: following it completes the login.
  const page = argv.at(-1)!
  expect(fs.statSync(page).mode & 0o777).toBe(0o600)
  expect(fs.statSync(path.dirname(page)).mode & 0o777).toBe(0o700)
  const url = JSON.parse(/location\.replace\(("[^"]*")\)/.exec(fs.readFileSync(page, "utf8"))![1]!.replace(/\\u003c/g, "<")) as string
  expect(url).toBe(String(event.url))
  const callbackUrl = new URL(await authorize(url))
  expect((await raw(Number(redirect.port), callbackUrl.pathname + callbackUrl.search)).status).toBe(200)
  const r = await done
  expect(r.code).toBe(0)
  expect(r.stderr).toContain("Opened your browser")
  expect(fs.existsSync(page)).toBe(false)
  t.note(`argv: script, --new-window, a 0600 page (0700 folder): no state= or code_challenge=; following it logged in; page removed`)
})
