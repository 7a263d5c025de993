/**
 * Two replicas of the hosted example service (two processes, two homes, no shared disk)
 * on one Postgres, against panva's oidc-provider through its own login pages: a login
 * started on replica 1 completes on replica 2 and is stored for the principal that
 * started it; a state used once is refused on the other replica; a login link opened by
 * another principal is refused and spent. Both replicas sit behind one public URL
 * (replica 1's), as behind a load balancer; the test plays the balancer by sending the
 * callback to the other replica.
 *
 * Needs AGENT_AUTH_TEST_DATABASE_URL (scripts/with-postgres.sh, which `pnpm test` runs);
 * without it the test fails, never skips.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { Browser } from "./support/browser.js"
import { buildHosted, homeWith, newKey, type Replica, startHosted } from "./support/hosted.js"
import { CLIENT_ID, type OidcServer, startOidcProvider } from "./support/oidcProvider.js"

let oidc: OidcServer
let one: Replica
let two: Replica

const database = (): string => {
  const url = process.env.AGENT_AUTH_TEST_DATABASE_URL
  if (url === undefined || url === "") throw new Error("AGENT_AUTH_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh (pnpm test does)")
  return url
}

beforeAll(async () => {
  const bundle = buildHosted()
  oidc = await startOidcProvider()
  const key = newKey()
  const env = { AGENT_AUTH_DATABASE_URL: database(), AGENT_AUTH_ENCRYPTION_KEY: key }
  one = await startHosted(bundle, homeWith({ issuer: oidc.issuer, clientId: CLIENT_ID, scopes: ["openid", "email", "offline_access"] }), env)
  two = await startHosted(bundle, homeWith({ issuer: oidc.issuer, clientId: CLIENT_ID, scopes: ["openid", "email", "offline_access"] }), { ...env, AGENT_AUTH_PUBLIC_URL: one.url })
}, 60_000)

afterAll(async () => {
  await Promise.all([one?.stop(), two?.stop()])
  await oidc?.close()
  for (const r of [one, two]) if (r !== undefined) fs.rmSync(r.home, { recursive: true, force: true })
})

/** A principal of this run only: the database is shared with other tests and runs. */
const principal = (name: string) => `${name}-${crypto.randomBytes(6).toString("hex")}`

const get = (replica: Replica, path: string, user: string) =>
  fetch(new URL(path, replica.url), { headers: { "x-example-user": user }, redirect: "manual" })

const statusOf = async (replica: Replica, user: string) => {
  const response = await get(replica, "/auth/status", user)
  expect(response.status).toBe(200)
  return (await response.json()) as { principal: string; logins: Array<{ provider: string; account: string; email?: string }> }
}

/**
 * Starts a login for `user` on `replica`, signs in at oidc-provider's pages as `idpLogin`,
 * and returns the callback (path and query) the provider redirected the browser to.
 */
const startAndSignIn = async (replica: Replica, user: string, idpLogin: string) => {
  const started = await get(replica, "/auth/login/acme", user)
  expect(started.status, replica.output()).toBe(303)
  const callbackUrl = `${one.url}/auth/callback`
  const visit = await new Browser().navigate(started.headers.get("location")!, {
    fields: { login: idpLogin, password: "any-password" },
    stopAt: (url) => url.startsWith(callbackUrl)
  })
  expect(visit.status, visit.trail.join("\n")).toBeUndefined()
  const url = new URL(visit.url)
  return `${url.pathname}${url.search}`
}

describe("hosted sign-in on two replicas over one Postgres", () => {
  it("a login started on replica 1 completes on replica 2, stored for the principal that started it", async () => {
    for (const replica of [one, two]) expect(replica.output()).toMatch(/storing in postgres 127\.0\.0\.1:\d+\//)
    const alice = principal("alice")
    const bob = principal("bob")
    const grants = oidc.grants("authorization_code")
    const callback = await startAndSignIn(one, alice, "alice-at-idp")
    const done = await get(two, callback, alice)
    expect(done.status, two.output()).toBe(303)
    expect(done.headers.get("location")).toBe("/")
    expect(oidc.grants("authorization_code")).toBe(grants + 1)
    // Stored in the shared database: both replicas see it, for alice only.
    for (const replica of [one, two]) {
      expect((await statusOf(replica, alice)).logins).toMatchObject([{ provider: "acme", email: "alice-at-idp@example.test" }])
      expect((await statusOf(replica, bob)).logins).toEqual([])
    }
    // The page shows it too.
    const page = await (await get(one, "/", alice)).text()
    expect(page).toContain("alice-at-idp@example.test")
  })

  it("a state used on one replica is refused on the other, with no second code exchange", async () => {
    const carol = principal("carol")
    const callback = await startAndSignIn(one, carol, "carol-at-idp")
    expect((await get(two, callback, carol)).status).toBe(303)
    const grants = oidc.grants("authorization_code")
    for (const replica of [one, two]) {
      const replay = await get(replica, callback, carol)
      expect(replay.status).toBe(400)
      expect(await replay.json()).toMatchObject({ error: "SignInRefused" })
    }
    expect(oidc.grants("authorization_code")).toBe(grants)
    expect((await statusOf(one, carol)).logins).toHaveLength(1)
  })

  it("a login link opened by another principal on the other replica is refused and spent", async () => {
    const dave = principal("dave")
    const eve = principal("eve")
    const callback = await startAndSignIn(one, dave, "dave-at-idp")
    const stolen = await get(two, callback, eve)
    expect(stolen.status).toBe(403)
    expect(await stolen.json()).toMatchObject({ error: "SignInRefused" })
    expect((await get(one, callback, dave)).status).toBe(400)
    expect((await statusOf(one, dave)).logins).toEqual([])
    expect((await statusOf(two, eve)).logins).toEqual([])
  })

  it("principals cannot log each other out across replicas", async () => {
    const frank = principal("frank")
    const grace = principal("grace")
    expect((await get(two, await startAndSignIn(one, frank, "shared-person"), frank)).status).toBe(303)
    expect((await get(one, await startAndSignIn(two, grace, "shared-person"), grace)).status).toBe(303)
    const out = await fetch(new URL("/auth/logout/acme", two.url), { method: "POST", headers: { "x-example-user": grace }, redirect: "manual" })
    expect(out.status).toBe(303)
    expect((await statusOf(one, grace)).logins).toEqual([])
    expect((await statusOf(one, frank)).logins).toMatchObject([{ provider: "acme", email: "shared-person@example.test" }])
  })
})
