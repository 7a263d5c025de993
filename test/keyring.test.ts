/**
 * The system keychain through the CLI, as a user meets it: a real Secret Service (run
 * through scripts/with-keyring.sh, as the root `test` script does; without it these tests
 * fail, never skip), no bus at all, and a bus that accepts connections and never answers.
 */
import { AuthConfig, Domain } from "@agent-auth/core"
import { FakeAuthServer } from "@agent-auth/testing"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { DateTime, Effect, Either, Redacted } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as KeychainHost from "../packages/node/src/internal/keychainHost.js"
import * as NodeKeyringStore from "../packages/node/src/NodeKeyringStore.js"
import { cliEnv, run, tempHome } from "./support/cli.js"
import { serveForFile } from "./support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile({ accessTokenTtl: "1 hour" }, (server) => (fake = server))

const bus = process.env.DBUS_SESSION_BUS_ADDRESS ?? ""
const key = "sk-ant-canary-keyring-0123456789abcdef"

/** A D-Bus address whose socket accepts every connection and never says a word. */
let silentDir = ""
let silentBus = ""
let silent: net.Server | undefined
const held: Array<net.Socket> = []
beforeAll(async () => {
  silentDir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-silent-bus-"))
  const socket = path.join(silentDir, "bus")
  silent = net.createServer((s) => void held.push(s))
  await new Promise<void>((resolve) => silent!.listen(socket, resolve))
  silentBus = `unix:path=${socket}`
})
afterAll(async () => {
  for (const s of held) s.destroy()
  await new Promise<void>((resolve) => (silent === undefined ? resolve() : silent.close(() => resolve())))
  fs.rmSync(silentDir, { recursive: true, force: true })
})

const withKeyring = (home: string, extra: Record<string, string> = {}) =>
  cliEnv(home, { AGENT_AUTH_STORE: "keyring", DBUS_SESSION_BUS_ADDRESS: bus, ...extra })

/** Every file under `dir` with its text. */
const filesUnder = (dir: string): Array<[string, string]> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => [path.join(d.parentPath, d.name), fs.readFileSync(path.join(d.parentPath, d.name), "latin1")])

const timed = async (args: ReadonlyArray<string>, env: Record<string, string>, input?: string) => {
  const t0 = performance.now()
  const result = await run(args, env, input)
  return { ...result, seconds: (performance.now() - t0) / 1000 }
}

/**
 * What the CLI's own start costs here and now (a command that never reaches the keychain).
 * Measured, since the machine may be loaded (the suite shares two cores with others): a
 * command that must not wait at all is allowed that much and a little more. The 3.5 s
 * bounds are plain, from spawn to exit: the CLI counts the keychain's 3 s from its own start.
 */
const startCost = async (home: string) => (await timed(["providers"], cliEnv(home))).seconds

const fallbackLine = /^.*the system keychain is not available \((.+)\); stored in plain text at (.+), mode 0600$/m

describe("AGENT_AUTH_STORE=keyring with a real keychain", () => {
  it("has a keychain to test against (scripts/with-keyring.sh)", () => {
    expect(bus, "no session bus: run the tests through scripts/with-keyring.sh").not.toBe("")
  })

  it("login --with-api-key → the key is in the keychain (secret-tool finds it), in no file; token and status read it", async () => {
    const home = tempHome()
    const env = withKeyring(home)
    const login = await run(["login", "anthropic", "--with-api-key"], env, `${key}\n`)
    expect(login.code, login.stderr).toBe(0)
    expect(login.stderr).toContain("system keychain (Secret Service)")
    const item = execFileSync("secret-tool", ["lookup", "service", `agent-auth:${home}`, "username", "anthropic/default"], {
      encoding: "utf8",
      env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: bus }
    })
    expect(JSON.parse(item)).toMatchObject({ _tag: "ApiKeyCredential", provider: "anthropic", key })
    for (const [file, text] of filesUnder(home)) expect({ file, leaks: text.includes(key) }).toEqual({ file, leaks: false })
    const token = await run(["token", "anthropic"], env)
    expect(token).toMatchObject({ code: 0, stdout: `${key}\n` })
    const status = await run(["status", "anthropic", "--json"], env)
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain("system keychain (Secret Service)")
    fs.rmSync(home, { recursive: true, force: true })
  })

  it("choosing keyring with logins in credentials.json moves them into the keychain and says so", async () => {
    const home = tempHome()
    expect((await run(["login", "anthropic", "--with-api-key"], cliEnv(home), `${key}\n`)).code).toBe(0)
    expect(fs.readFileSync(path.join(home, "credentials.json"), "utf8")).toContain(key)
    const status = await run(["status", "anthropic"], withKeyring(home))
    expect(status.code, status.stderr).toBe(0)
    expect(status.stderr).toMatch(/moved 1 credential\(s\) from .*credentials\.json into the system keychain/)
    expect(status.stdout + status.stderr).toContain("stored in the system keychain (Secret Service)")
    for (const [file, text] of filesUnder(home)) expect({ file, leaks: text.includes(key) }).toEqual({ file, leaks: false })
    expect(await run(["token", "anthropic"], withKeyring(home))).toMatchObject({ code: 0, stdout: `${key}\n` })
    fs.rmSync(home, { recursive: true, force: true })
  })

  it("auto with a working keychain: status says why logins in credentials.json are not in it, never probing", async () => {
    const home = tempHome()
    const file = path.join(home, "credentials.json")
    const auto = cliEnv(home, { AGENT_AUTH_STORE: "auto", DBUS_SESSION_BUS_ADDRESS: bus })
    expect((await run(["login", "anthropic", "--with-api-key"], cliEnv(home), `${key}\n`)).code).toBe(0)
    const before = JSON.parse((await run(["status", "--json"], auto)).stdout)
    expect(before.keychain_not_used).toEqual({
      reason: "they were stored without trying it (AGENT_AUTH_STORE=file, or an agent-auth before the keychain)",
      checked_at: null,
      file
    })
    // status asked nothing of the keychain: no helper, so no probe's answer recorded.
    expect(fs.existsSync(path.join(home, "keychain-probe.json"))).toBe(false)
    const openai = "sk-canary-openai-0123456789abcdef"
    const login = await run(["login", "openai", "--with-api-key"], auto, `${openai}\n`)
    expect(login.code, login.stderr).toBe(0)
    expect(login.stdout + login.stderr).toContain("system keychain (Secret Service)")
    const after = await run(["status"], auto)
    const said = after.stdout.split("\n").filter((l) => l.includes("are not in the system keychain"))
    expect(said).toHaveLength(1)
    expect(said[0]).toMatch(
      /: it answered when a secret was last stored \(\d{4}-[\d-]+T[\d:.]+Z\), but these were stored before, and a credential stays where it was stored\. /
    )
    // Nothing left in the file: nothing to explain.
    expect((await run(["logout", "anthropic"], auto)).code).toBe(0)
    const keychainOnly = JSON.parse((await run(["status", "--json"], auto)).stdout)
    expect(keychainOnly.providers.map((p: { provider: string }) => p.provider)).toEqual(["openai"])
    expect(keychainOnly).not.toHaveProperty("keychain_not_used")
    fs.rmSync(home, { recursive: true, force: true })
  })

  it("8 processes with an expired login in the keychain: exactly 1 refresh, all 8 get its token", async () => {
    const home = tempHome()
    fs.writeFileSync(
      path.join(home, "config.json"),
      JSON.stringify({ providers: { acme: { kind: "oidc", issuer: fake.issuer, clientId: fake.clientId } } })
    )
    const issued = await Effect.runPromise(fake.issueTokens())
    const now = DateTime.unsafeNow()
    const expired = new Domain.OAuthCredential({
      provider: "acme",
      account: "ada",
      tokens: new Domain.TokenSet({
        accessToken: Redacted.make(issued.access_token),
        refreshToken: Redacted.make(issued.refresh_token),
        expiresAt: DateTime.subtract(now, { minutes: 1 }),
        scopes: ["openid", "offline_access"],
        tokenType: "Bearer"
      }),
      claims: new Domain.AccountClaims({ email: "ada@example.com" }),
      obtainedAt: DateTime.subtract(now, { hours: 2 })
    })
    await Effect.runPromise(
      Effect.flatMap(NodeKeyringStore.makeKeyring(), (store) => store.set(expired)).pipe(
        Effect.scoped,
        Effect.provide(AuthConfig.layerWith({ home })),
        Effect.provide(NodeFileSystem.layer)
      )
    )
    const before = (await Effect.runPromise(fake.counts)).refreshToken
    const results = await Promise.all(Array.from({ length: 8 }, () => run(["token", "acme"], withKeyring(home))))
    for (const r of results) expect(r.code, r.stderr).toBe(0)
    expect((await Effect.runPromise(fake.counts)).refreshToken - before).toBe(1)
    const tokens = new Set(results.map((r) => r.stdout))
    expect(tokens.size).toBe(1)
    expect([...tokens][0]).not.toBe(`${issued.access_token}\n`)
    for (const [file, text] of filesUnder(home)) {
      expect({ file, leaks: text.includes([...tokens][0]!.trim()) }).toEqual({ file, leaks: false })
    }
    fs.rmSync(home, { recursive: true, force: true })
  }, 60_000)
})

describe("no keychain: no bus, and a bus that never answers", () => {
  // [name, extra env, the reason the message gives, whether the command may wait for the keychain]
  const cases = [
    ["no bus", () => ({}), () => "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set", false],
    [
      "a bus address whose socket does not exist",
      () => ({ DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(silentDir, "gone")}` }),
      () => `no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS names ${path.join(silentDir, "gone")}, which does not exist`,
      false
    ],
    ["a silent bus", () => ({ DBUS_SESSION_BUS_ADDRESS: silentBus }), () => "it did not answer within 2.5s of the command's start", true]
  ] as const

  for (const [name, extra, reason, waits] of cases) {
    it(`${name}: auto (the default) stores in the file with one warning line, within 3.5 s`, async () => {
      const home = tempHome()
      const env = { ...cliEnv(home, extra()), AGENT_AUTH_STORE: "auto" }
      const base = await startCost(home)
      const login = await timed(["login", "anthropic", "--with-api-key"], env, `${key}\n`)
      expect(login.code, login.stderr).toBe(0)
      expect(login.seconds).toBeLessThan(3.5)
      // A silent bus is given its time (until 2.5 s after the command's start); no bus is known at once.
      if (waits) expect(login.seconds).toBeGreaterThanOrEqual(2.5)
      else expect(login.seconds - base).toBeLessThan(1.5)
      const lines = login.stderr.split("\n").filter((l) => fallbackLine.test(l))
      expect(lines).toHaveLength(1)
      expect(fallbackLine.exec(lines[0]!)?.[1]).toContain(reason())
      expect(fallbackLine.exec(lines[0]!)?.[2]).toBe(path.join(home, "credentials.json"))
      expect(lines[0]).not.toContain(key)
      expect(fs.statSync(path.join(home, "credentials.json")).mode & 0o777).toBe(0o600)
      // Reading it back touches no keychain: no wait, no warning.
      const token = await timed(["token", "anthropic"], env)
      expect(token).toMatchObject({ code: 0, stdout: `${key}\n`, stderr: "" })
      expect(token.seconds - base).toBeLessThan(2)
      // status says once why the keychain holds nothing, without asking it again: no wait, and
      // no connection to the bus (the silent bus counts the connections it accepts).
      const connections = held.length
      const status = await timed(["status"], env)
      expect(status.code, status.stderr).toBe(0)
      expect(status.seconds - base).toBeLessThan(2)
      const json = JSON.parse((await run(["status", "--json"], env)).stdout)
      expect(held.length).toBe(connections)
      const hint = " (is the keyring daemon running and unlocked, and is DBUS_SESSION_BUS_ADDRESS right?)"
      // No bus is known now; a silent bus is what the login's probe found, with its time.
      expect(json.keychain_not_used).toEqual({
        reason: waits ? reason() + hint : reason(),
        checked_at: waits ? expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/) : null,
        file: path.join(home, "credentials.json")
      })
      if (waits) expect(Math.abs(Date.parse(json.keychain_not_used.checked_at) - Date.now())).toBeLessThan(60_000)
      const when = waits ? `when a secret was stored at ${json.keychain_not_used.checked_at}, ` : ""
      expect(status.stdout.split("\n").filter((l) => l.includes("system keychain"))).toEqual([
        `! Credentials stored in ${path.join(home, "credentials.json")} are not in the system keychain (Secret Service): ` +
        `${when}${json.keychain_not_used.reason}. The file keeps them in plain text, mode 0600.`
      ])
      fs.rmSync(home, { recursive: true, force: true })
    })

    it(`${name}: explicit keyring exits 4 naming the keychain, within 3.5 s`, async () => {
      const home = tempHome()
      const env = { ...cliEnv(home, extra()), AGENT_AUTH_STORE: "keyring" }
      const login = await timed(["login", "anthropic", "--with-api-key"], env, `${key}\n`)
      expect(login.code).toBe(4)
      expect(login.stderr).toContain("system keychain (Secret Service)")
      expect(login.stderr).toContain(reason())
      expect(login.stderr).not.toContain(key)
      expect(login.seconds).toBeLessThan(3.5)
      expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
      fs.rmSync(home, { recursive: true, force: true })
    })
  }

  it("a silent bus: status and token on an empty home never wait for the keychain", async () => {
    const home = tempHome()
    const base = await startCost(home)
    const connections = held.length
    for (const store of ["auto", "keyring"]) {
      const env = { ...cliEnv(home, { DBUS_SESSION_BUS_ADDRESS: silentBus }), AGENT_AUTH_STORE: store }
      const status = await timed(["status"], env)
      expect(status.code, status.stderr).toBe(1)
      expect(status.seconds - base).toBeLessThan(2)
      const token = await timed(["token", "anthropic"], env)
      expect(token.code, token.stderr).toBe(1)
      expect(token.seconds - base).toBeLessThan(2)
    }
    // Not even a connection: the keychain helper was never started.
    expect(held.length).toBe(connections)
    fs.rmSync(home, { recursive: true, force: true })
  })

  it("a silent bus with a login in the keychain: token exits 4 naming the keychain, within 3.5 s", async () => {
    const home = tempHome()
    expect((await run(["login", "anthropic", "--with-api-key"], withKeyring(home), `${key}\n`)).code).toBe(0)
    for (const store of ["auto", "keyring"]) {
      const env = { ...cliEnv(home, { DBUS_SESSION_BUS_ADDRESS: silentBus }), AGENT_AUTH_STORE: store }
      const token = await timed(["token", "anthropic"], env)
      expect(token.code, `${store}: ${token.stderr}`).toBe(4)
      expect(token.stderr).toContain("system keychain (Secret Service)")
      expect(token.stderr).toContain("did not answer within 2.5s of the command's start")
      expect(token.seconds).toBeLessThan(3.5)
    }
    fs.rmSync(home, { recursive: true, force: true })
  })

  it("a deadline already past still gives the keychain 1 s once its helper is ready, and never more than 3 s", async () => {
    const saved = process.env.DBUS_SESSION_BUS_ADDRESS
    process.env.DBUS_SESSION_BUS_ADDRESS = silentBus
    try {
      const probe = (deadline: { at: number; says: string } | undefined) =>
        Effect.runPromise(Effect.scoped(Effect.gen(function*() {
          const host = yield* KeychainHost.make({ deadline })
          const t0 = performance.now()
          const answer = yield* Effect.either(host.probe)
          return { answer, seconds: (performance.now() - t0) / 1000 }
        })))
      // The seconds include the helper's start (not bounded by the deadline); the wait after it is.
      const past = await probe({ at: Date.now() - 60_000, says: "the test's deadline" })
      expect(Either.isLeft(past.answer) && past.answer.left.reason).toContain("did not answer within the test's deadline")
      expect(past.seconds).toBeGreaterThanOrEqual(1)
      expect(past.seconds).toBeLessThan(2.9)
      const far = await probe({ at: Date.now() + 60_000, says: "the test's deadline" })
      expect(Either.isLeft(far.answer) && far.answer.left.reason).toContain("did not answer within 3s (")
      expect(far.seconds).toBeGreaterThanOrEqual(3)
    } finally {
      process.env.DBUS_SESSION_BUS_ADDRESS = saved
    }
  })
})
