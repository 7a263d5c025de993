/**
 * The built-in `demo` provider, black-box through the bundle: the `agent-auth demo` tour,
 * and the embedded server's state surviving from one command's process to the next.
 * The bundle is built by test/globalSetup.ts. Each test points the demo issuer at a free
 * port of its own (config.json), and every process of a test has ended before it returns.
 */
import { Domain } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { cliEnv, tempHome } from "./support/cli.js"
import { demoStatePath, freePort, issuedTokens, runWithin, useDemoPort } from "./support/demo.js"

const withHome = async (f: (home: string) => Promise<void>) => {
  const home = tempHome()
  try {
    await f(home)
  } finally {
    fs.rmSync(home, { recursive: true, force: true })
  }
}

const JWT = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/

describe("agent-auth demo", () => {
  it("tours every command against the embedded server, exits 0, and never prints a whole token", () =>
    withHome(async (home) => {
      const tour = path.join(home, "tour")
      useDemoPort(tour, await freePort())
      const r = await runWithin(["demo", "--home", tour], cliEnv(home), 60_000)
      const out = r.stdout + r.stderr
      expect(r.code, out).toBe(0)
      const commands = out.split("\n").filter((l) => l.startsWith("$ agent-auth ")).map((l) => l.slice(2))
      expect(commands).toEqual([
        "agent-auth login demo",
        "agent-auth status demo",
        "agent-auth token demo",
        "agent-auth refresh demo",
        "agent-auth status demo",
        "agent-auth logout demo",
        "agent-auth status demo"
      ])
      expect(out).toContain("Logged in to Demo")
      expect(out).toContain("Refreshed Demo")
      expect(out).toContain("Revoked the login for demo")
      expect(out).toContain("Not logged in: run `agent-auth login demo`")
      expect(out).toContain("(exit 1)")
      expect(out).toContain("What next")

      // Every token the tour's server issued: none in the output, the first access token (the one `token` printed) masked.
      const issued = issuedTokens(tour)
      expect(issued.access.length).toBe(2) // login, refresh
      expect(issued.refresh.length).toBe(2)
      for (const t of [...issued.access, ...issued.refresh]) expect(out).not.toContain(t)
      expect(out).not.toMatch(JWT) // ID tokens
      const tokenStep = out.slice(out.indexOf("$ agent-auth token demo"), out.indexOf("$ agent-auth refresh demo"))
      expect(tokenStep).toContain(Domain.mask(Redacted.make(issued.access[0]!)))
      // The kept home: the state file is private; the login is gone after logout.
      expect(fs.statSync(demoStatePath(tour)).mode & 0o777).toBe(0o600)
    }), 90_000)

  it("without --home, the tour runs in a temporary home (on the demo issuer of the person's config) and removes it", () =>
    withHome(async (home) => {
      useDemoPort(home, await freePort())
      const r = await runWithin(["demo"], cliEnv(home, { TMPDIR: home }), 60_000)
      expect(r.code, r.stdout + r.stderr).toBe(0)
      const used = /Its home, for this tour only: (.+)/.exec(r.stderr)?.[1]
      expect(used?.startsWith(path.join(home, "agent-auth-demo-"))).toBe(true)
      expect(fs.existsSync(used!)).toBe(false)
      // The person's own home was not used for the tour's logins.
      expect(fs.existsSync(demoStatePath(home))).toBe(false)
    }), 90_000)
})

describe("the demo server across processes", () => {
  it("login, token, refresh and token, each its own process, all work: the server's state survives each restart", () =>
    withHome(async (home) => {
      useDemoPort(home, await freePort())
      const env = cliEnv(home)
      const login = await runWithin(["login", "demo"], env)
      expect(login.code, login.stderr).toBe(0)
      expect(login.stderr).toContain("Logged in to Demo")
      expect(fs.statSync(demoStatePath(home)).mode & 0o777).toBe(0o600)

      const first = await runWithin(["token", "demo"], env)
      expect(first.code, first.stderr).toBe(0)
      const refresh = await runWithin(["refresh", "demo"], env)
      expect(refresh.code, refresh.stderr).toBe(0)
      const second = await runWithin(["token", "demo"], env)
      expect(second.code, second.stderr).toBe(0)

      const [t1, t2] = [first.stdout.trim(), second.stdout.trim()]
      expect(t2).not.toBe(t1)
      // Both were issued by the demo server (a new process each time), the second by the refresh.
      expect(issuedTokens(home).access).toEqual([t1, t2])
    }), 90_000)

  it("an unusable saved state is set aside and a fresh server starts", () =>
    withHome(async (home) => {
      useDemoPort(home, await freePort())
      fs.writeFileSync(demoStatePath(home), "{ not json", { mode: 0o600 })
      const login = await runWithin(["login", "demo"], cliEnv(home))
      expect(login.code, login.stderr).toBe(0)
      expect(login.stderr).toContain("could not be used")
      expect(fs.readFileSync(`${demoStatePath(home)}.unusable`, "utf8")).toBe("{ not json")
      expect(issuedTokens(home).access).toHaveLength(1)
    }), 60_000)
})
