/**
 * The CLI as a user runs it: the built bundle in child processes, a temporary
 * AGENT_AUTH_HOME, and the fake authorization server on a real 127.0.0.1 socket.
 */
import { FakeAuthServer } from "@agent-auth/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { cliEnv, finish, followAuthorization, nextEvent, run, start, tempHome } from "./support/cli.js"
import { serveForFile } from "./support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile({ accessTokenTtl: "1 hour" }, (server) => (fake = server))

const homeWithAcme = (extra: Record<string, unknown> = {}) => {
  const home = tempHome()
  fs.writeFileSync(
    path.join(home, "config.json"),
    JSON.stringify({ providers: { acme: { kind: "oidc", issuer: fake.issuer, clientId: fake.clientId, apiBaseUrl: "https://llm.acme.example/v1", ...extra } } })
  )
  return home
}

const credentialsOf = (home: string) => JSON.parse(fs.readFileSync(path.join(home, "credentials.json"), "utf8"))

/** Log in as a user would: run `login --no-browser --json`, follow the printed URL like a browser. */
const login = async (home: string, args: ReadonlyArray<string> = []) => {
  const child = start(["login", "acme", "--no-browser", "--json", ...args], cliEnv(home))
  const done = finish(child)
  const url = await nextEvent(child, "authorization_url")
  const page = await followAuthorization(String(url.url))
  expect(page.status).toBe(200)
  expect(await page.text()).not.toContain("code=")
  return done
}

describe("agent-auth CLI against a real loopback authorization server", () => {
  it("login → status → token → refresh → logout → status", async () => {
    const home = homeWithAcme()
    const env = cliEnv(home)

    const before = await run(["status", "acme"], env)
    expect(before.code).toBe(1)
    expect(before.stdout).toContain("Not logged in")

    const loggedIn = await login(home)
    expect(loggedIn.stderr).toContain("Logged in to acme")
    expect(loggedIn.code).toBe(0)
    const events = loggedIn.stdout.trim().split("\n").map((l) => JSON.parse(l))
    expect(events.map((e) => e.event)).toEqual(["authorization_url", "logged_in"])
    expect(events[1]).toMatchObject({ provider: "acme", account: FakeAuthServer.defaultUser.email })
    expect(typeof events[1].expires_at).toBe("string")

    // File protections.
    expect(fs.statSync(path.join(home, "credentials.json")).mode & 0o777).toBe(0o600)
    const stored = credentialsOf(home)
    const access = JSON.stringify(stored).match(/"accessToken":"([^"]+)"/)![1]!

    const status = await run(["status", "acme"], env)
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(FakeAuthServer.defaultUser.email)
    expect(status.stdout).toMatch(/Expires .*\(in (59|60) min\)/)
    expect(status.stdout).toContain("Scopes:")
    expect(status.stdout + status.stderr).not.toContain(access)

    const statusJson = await run(["status", "acme", "--json"], env)
    const parsed = JSON.parse(statusJson.stdout)
    expect(parsed.providers[0]).toMatchObject({ provider: "acme", usable: true })
    expect(parsed.providers[0].credentials[0].expires_in_seconds).toBeGreaterThan(3500)

    const token = await run(["token", "acme"], env)
    expect(token.code).toBe(0)
    expect(token.stdout).toBe(`${access}\n`)
    expect(token.stderr).toBe("")
    expect(await Effect.runPromise(fake.isActive(access))).toBe(true)

    const tokenJson = JSON.parse((await run(["token", "acme", "--json"], env)).stdout)
    expect(tokenJson).toMatchObject({ type: "bearer", provider: "acme", base_url: "https://llm.acme.example/v1", headers: { Authorization: `Bearer ${access}` } })

    const countsBefore = await Effect.runPromise(fake.counts)
    const refreshed = await run(["refresh", "acme"], env)
    expect(refreshed.code).toBe(0)
    expect(refreshed.stderr).toContain("Refreshed")
    expect((await Effect.runPromise(fake.counts)).refreshToken).toBe(countsBefore.refreshToken + 1)
    const newAccess = (await run(["token", "acme"], env)).stdout.trim()
    expect(newAccess).not.toBe(access)
    expect(await Effect.runPromise(fake.isActive(newAccess))).toBe(true)

    const out = await run(["logout", "acme"], env)
    expect(out.code).toBe(0)
    expect(out.stderr).toContain("Revoked")
    expect((await Effect.runPromise(fake.counts)).revocation).toBe(countsBefore.revocation + 1)
    expect(await Effect.runPromise(fake.isActive(newAccess))).toBe(false)

    const after = await run(["status", "acme"], env)
    expect(after.code).toBe(1)
  })

  it("token without a login exits 1 and names the login command", async () => {
    const home = homeWithAcme()
    const r = await run(["token", "acme"], cliEnv(home))
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.stderr).toContain("agent-auth login acme")
  })

  it("an unknown provider is a usage error (2)", async () => {
    const r = await run(["token", "nope"], cliEnv(homeWithAcme()))
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("Unknown provider")
  })

  it("an invalid config.json is a config error (2) naming the field", async () => {
    const home = tempHome()
    fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { acme: { issuer: "http://login.example" } } }))
    const r = await run(["status"], cliEnv(home))
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("providers.acme.issuer")
  })

  it("a corrupt credentials file is a store error (4), kept aside, never overwritten", async () => {
    const home = homeWithAcme()
    fs.writeFileSync(path.join(home, "credentials.json"), "{ this is not json", { mode: 0o600 })
    const r = await run(["token", "acme"], cliEnv(home))
    expect(r.code).toBe(4)
    expect(r.stderr).toContain("credentials.json")
    const kept = fs.readdirSync(home).filter((f) => f.startsWith("credentials.json.corrupt"))
    expect(kept.length).toBe(1)
    expect(fs.readFileSync(path.join(home, kept[0]!), "utf8")).toBe("{ this is not json")
  })

  it("a busy fixed port is PortUnavailable (exit 3) naming the port and the alternatives", async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const home = homeWithAcme({ redirect: { ports: [port] } })
      const r = await run(["login", "acme", "--no-browser"], cliEnv(home))
      expect(r.code).toBe(3)
      expect(r.stderr).toContain(String(port))
      expect(r.stderr).toContain("--device")
    } finally {
      blocker.close()
    }
  })

  it("a login that gets no answer times out (exit 1) and closes its port", async () => {
    const home = homeWithAcme()
    const child = start(["login", "acme", "--no-browser", "--json", "--timeout", "2s"], cliEnv(home))
    const done = finish(child)
    const url = await nextEvent(child, "authorization_url")
    const port = Number(new URL(String(url.redirect_uri)).port)
    const r = await done
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("timed out")
    await expect(connect(port)).rejects.toThrow()
  })

  it("Ctrl-C (SIGINT) during a login exits 130 and leaves no listening socket", async () => {
    const home = homeWithAcme()
    const child = start(["login", "acme", "--no-browser", "--json"], cliEnv(home))
    const done = finish(child)
    const url = await nextEvent(child, "authorization_url")
    const port = Number(new URL(String(url.redirect_uri)).port)
    await connect(port) // listening now
    child.kill("SIGINT")
    const r = await done
    expect(r.code).toBe(130)
    await expect(connect(port)).rejects.toThrow()
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
  })

  it("providers lists the built-ins and the configured provider", async () => {
    const r = await run(["providers", "--json"], cliEnv(homeWithAcme()))
    expect(r.code).toBe(0)
    const ids = JSON.parse(r.stdout).providers.map((p: { id: string }) => p.id)
    expect(ids).toEqual(expect.arrayContaining(["openai", "anthropic", "demo", "acme"]))
  })
})

const connect = (port: number) =>
  new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve()
    })
    socket.once("error", reject)
  })

describe("a login without a refresh token", () => {
  it("`refresh` says it cannot be refreshed and until when it works, without a request; `token` still works", async () => {
    const home = homeWithAcme()
    const env = cliEnv(home)
    expect((await login(home)).code).toBe(0)
    const file = credentialsOf(home)
    delete file.credentials[0].tokens.refreshToken
    fs.writeFileSync(path.join(home, "credentials.json"), JSON.stringify(file), { mode: 0o600 })
    const countsBefore = await Effect.runPromise(fake.counts)
    const refreshed = await run(["refresh", "acme"], env)
    expect(refreshed.code).toBe(1)
    expect(refreshed.stderr).toContain("cannot be refreshed: acme gave no refresh token")
    expect(refreshed.stderr).toContain(`works until ${file.credentials[0].tokens.expiresAt}`)
    expect(refreshed.stderr).not.toContain("can no longer be used")
    expect((await Effect.runPromise(fake.counts)).refreshToken).toBe(countsBefore.refreshToken)
    const token = await run(["token", "acme"], env)
    expect(token.code).toBe(0)
    expect(token.stdout).toBe(`${file.credentials[0].tokens.accessToken}\n`)
  })
})
