/**
 * Several accounts of one provider, through the bundle: two logins side by side, `status`
 * listing both, `use` switching the default (config.json `defaults`), and `token`,
 * `refresh`, `logout` acting on the default unless `--account` names another.
 */
import { FakeAuthServer } from "@agent-auth/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { cliEnv, finish, followAuthorization, nextEvent, run, start, tempHome } from "./support/cli.js"
import { serveForFile } from "./support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile({}, (server) => (fake = server))

const ADA = FakeAuthServer.defaultUser.email
const BOB = "bob@example.test"

const homeWithAcme = () => {
  const home = tempHome()
  fs.writeFileSync(
    path.join(home, "config.json"),
    JSON.stringify({ providers: { acme: { kind: "oidc", issuer: fake.issuer, clientId: fake.clientId } } }, null, 2)
  )
  return home
}

/** Sign in as `user` (the fake's current user), following the printed URL as a browser would. */
const loginAs = async (home: string, user: FakeAuthServer.UserInput, args: ReadonlyArray<string> = []) => {
  await Effect.runPromise(fake.setUser(user))
  const child = start(["login", "acme", "--no-browser", "--json", ...args], cliEnv(home))
  const done = finish(child)
  await followAuthorization(String((await nextEvent(child, "authorization_url")).url))
  const r = await done
  expect(r.code, r.stderr).toBe(0)
  return r
}

/** The stored access token of each account. */
const accessTokens = (home: string): Record<string, string> =>
  Object.fromEntries(
    (JSON.parse(fs.readFileSync(path.join(home, "credentials.json"), "utf8")).credentials as Array<
      { account: string; tokens: { accessToken: string } }
    >).map((c) => [c.account, c.tokens.accessToken])
  )

describe("several accounts", () => {
  it("two logins side by side; use switches the default; token, refresh, logout follow it or --account", async () => {
    const home = homeWithAcme()
    const env = cliEnv(home)
    await loginAs(home, { sub: "user-0001", email: ADA })
    const second = await loginAs(home, { sub: "user-0002", email: BOB, name: "Bob" })
    expect(JSON.parse(second.stdout.trim().split("\n").at(-1)!)).toMatchObject({ event: "logged_in", account: BOB })
    const tokens = accessTokens(home)
    expect(Object.keys(tokens).sort()).toEqual([ADA, BOB])
    expect(tokens[ADA]).not.toBe(tokens[BOB])

    // status: every account, the default (the first, until `use`) marked.
    const status = await run(["status", "acme"], env)
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(`Logged in with OAuth as ${ADA}`)
    expect(status.stdout).toContain(`Logged in with OAuth as ${BOB}`)
    expect(status.stdout).toContain(`Accounts: ${ADA} (default), ${BOB}`)
    expect(status.stdout).toContain(`\`agent-auth use acme ${BOB}\` makes it the default`)
    const before = JSON.parse((await run(["status", "acme", "--json"], env)).stdout).providers[0]
    expect(before).toMatchObject({ accounts: [ADA, BOB], default_account: ADA })
    expect(before.credentials.map((c: { account: string; active: boolean }) => [c.account, c.active])).toEqual([[ADA, true], [BOB, false]])

    expect((await run(["token", "acme"], env)).stdout.trim()).toBe(tokens[ADA])
    expect((await run(["token", "acme", "--account", BOB], env)).stdout.trim()).toBe(tokens[BOB])

    // use: the default moves to Bob, recorded in config.json beside what was there.
    const use = await run(["use", "acme", BOB, "--json"], env)
    expect(use.code, use.stderr).toBe(0)
    expect(JSON.parse(use.stdout)).toEqual({ event: "default_account", provider: "acme", account: BOB })
    const config = JSON.parse(fs.readFileSync(path.join(home, "config.json"), "utf8"))
    expect(config.defaults).toEqual({ acme: BOB })
    expect(config.providers.acme.issuer).toBe(fake.issuer)
    expect((await run(["token", "acme"], env)).stdout.trim()).toBe(tokens[BOB])
    expect(JSON.parse((await run(["status", "acme", "--json"], env)).stdout).providers[0].default_account).toBe(BOB)
    expect((await run(["providers", "--json"], env)).stdout).toContain(`"id":"acme"`)

    // refresh: the default account's login only.
    expect((await run(["refresh", "acme"], env)).stderr).toContain(`Refreshed acme (${BOB})`)
    const refreshed = accessTokens(home)
    expect(refreshed[BOB]).not.toBe(tokens[BOB])
    expect(refreshed[ADA]).toBe(tokens[ADA])
    expect((await run(["refresh", "acme", "--account", ADA], env)).stderr).toContain(`Refreshed acme (${ADA})`)
    expect(accessTokens(home)[ADA]).not.toBe(tokens[ADA])

    // An account that is not stored is refused, naming those that are.
    const wrong = await run(["use", "acme", "carol@example.test"], env)
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain(`stored: ${ADA}, ${BOB}`)
    expect(JSON.parse(fs.readFileSync(path.join(home, "config.json"), "utf8")).defaults).toEqual({ acme: BOB })

    // logout: the default account only; the other stays, and is named.
    const out = await run(["logout", "acme"], env)
    expect(out.code).toBe(0)
    expect(out.stderr).toContain(`Revoked the login for acme (${BOB})`)
    expect(out.stderr).toContain(`Still stored for acme: ${ADA}`)
    expect(Object.keys(accessTokens(home))).toEqual([ADA])
    // The recorded default is gone from the store: the remaining account is used.
    expect((await run(["token", "acme"], env)).stdout.trim()).toBe(accessTokens(home)[ADA])
    expect((await run(["logout", "acme", "--account", ADA], env)).code).toBe(0)
    expect(accessTokens(home)).toEqual({})
    expect((await run(["token", "acme"], env)).code).toBe(1)
  }, 120_000)

  it("--account names the login; an API key and a login of one provider are separate accounts", async () => {
    const home = homeWithAcme()
    const env = cliEnv(home)
    await loginAs(home, { sub: "user-0001", email: ADA }, ["--account", "work"])
    expect(Object.keys(accessTokens(home))).toEqual(["work"])
    const key = await run(["login", "openai", "--with-api-key", "--account", "ci"], env, "sk-ci-key-0123456789abcdefghij")
    expect(key.code).toBe(0)
    const status = JSON.parse((await run(["status", "--json"], env)).stdout).providers
    expect(status.map((p: { provider: string; accounts: Array<string> }) => [p.provider, p.accounts])).toEqual([
      ["openai", ["ci"]],
      ["acme", ["work"]]
    ])
    expect((await run(["use", "openai", "nobody"], env)).code).toBe(2)
    const none = await run(["use", "anthropic", "x"], env)
    expect(none.code).toBe(2)
    expect(none.stderr).toContain("nothing is stored for anthropic")
  }, 60_000)
})
