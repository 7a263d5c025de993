/**
 * `pnpm example:hosted` out of the box: without a key it stops with exit 2 naming the
 * variable; with one and no provider in config.json it offers `demo` (the fake
 * authorization server in its process), on SQLite, and a sign-in through it completes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { cliEnv, tempHome } from "./support/cli.js"
import { buildHosted, newKey, type Replica, startHosted } from "./support/hosted.js"

let bundle: string
let service: Replica | undefined
const home = tempHome()

beforeAll(() => {
  bundle = buildHosted()
}, 60_000)

afterAll(async () => {
  await service?.stop()
  fs.rmSync(home, { recursive: true, force: true })
})

describe("the hosted example out of the box", () => {
  it("without AGENT_AUTH_ENCRYPTION_KEY it exits 2 and says how to make one", () => {
    const r = spawnSync(process.execPath, [bundle], { env: cliEnv(home, { PORT: "0" }), encoding: "utf8", timeout: 20_000 })
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toContain("AGENT_AUTH_ENCRYPTION_KEY")
    expect(r.stderr).toContain("openssl rand -base64 32")
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it("with no provider configured it offers demo, and a sign-in through it is stored", async () => {
    service = await startHosted(bundle, home, { AGENT_AUTH_ENCRYPTION_KEY: newKey() })
    expect(service.output()).toContain(`storing in sqlite ${home}/credentials.db`)
    expect(service.output()).toContain("offering \"demo\"")
    const as = { "x-example-user": "alice" }
    const page = await (await fetch(service.url, { headers: as })).text()
    expect(page).toContain("Sign in to Demo")
    const started = await fetch(`${service.url}/auth/login/demo`, { headers: as, redirect: "manual" })
    expect(started.status).toBe(303)
    // The fake server approves at once and sends the browser back.
    const approved = await fetch(started.headers.get("location")!, { redirect: "manual" })
    expect(approved.status).toBe(302)
    const done = await fetch(approved.headers.get("location")!, { headers: as, redirect: "manual" })
    expect(done.status, service.output()).toBe(303)
    const status = await (await fetch(`${service.url}/auth/status`, { headers: as })).json()
    expect(status).toMatchObject({ principal: "alice", logins: [{ provider: "demo", kind: "oauth" }] })
  })
})
