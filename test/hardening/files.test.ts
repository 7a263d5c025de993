/**
 * Hardening, the credentials file: what a careless `chmod`, a planted symbolic link, a
 * FIFO, or a damaged file does to the real CLI and the file store. Logins are real tokens
 * from the fake server on a 127.0.0.1 socket, stored through the file store.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { AuthConfig } from "@agent-auth/core"
import { NodeTokenStore } from "@agent-auth/node"
import { FakeAuthServer } from "@agent-auth/testing"
import { afterAll, expect } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { cliEnv, run } from "../support/cli.js"
import { homes } from "./support/attack.js"
import { credentialsPath, readCredentials, seedIssued } from "./support/seed.js"
import { area } from "./support/table.js"
import { serveForFile } from "../support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
const home = homes()
serveForFile({}, (server) => (fake = server))
afterAll(() => home.cleanup())

const mode = (p: string) => fs.lstatSync(p).mode & 0o777

/** The file store's own safety report, as `status` would get it. */
const warnings = (dir: string) =>
  Effect.runPromise(
    Effect.flatMap(NodeTokenStore.makeFile(), (s) => s.check).pipe(
      Effect.provide(AuthConfig.layerWith({ home: dir })),
      Effect.provide(NodeFileSystem.layer)
    )
  )

const files = area("files", import.meta.url)

files.promise("credentials file and folder made world-readable: reported, repaired by the next write", "survived", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  await seedIssued(dir, fake)
  const file = credentialsPath(dir)
  expect([mode(file), mode(dir)]).toEqual([0o600, 0o700])
  fs.chmodSync(file, 0o644)
  fs.chmodSync(dir, 0o755)
  const reported = await warnings(dir)
  expect(reported.join("\n")).toContain(`${file} is accessible to other users (mode 0644)`)
  expect(reported.join("\n")).toContain(`${dir} is accessible to other users (mode 0755)`)
  // `status` shows the same, on stderr and in --json.
  const status = await run(["status"], cliEnv(dir))
  expect(status.stdout).toContain(`${file} is accessible to other users (mode 0644)`)
  expect(status.stdout).toContain(`${dir} is accessible to other users (mode 0755)`)
  expect(JSON.parse((await run(["status", "--json"], cliEnv(dir))).stdout).warnings).toEqual(reported)
  // A read changes nothing; the next write closes both.
  expect((await run(["token", "acme"], cliEnv(dir))).code).toBe(0)
  expect(mode(file)).toBe(0o644)
  const refreshed = await run(["refresh", "acme"], cliEnv(dir))
  expect(refreshed.code).toBe(0)
  expect([mode(file), mode(dir)]).toEqual([0o600, 0o700])
  expect(await warnings(dir)).toEqual([])
  t.note("`status` (and --json) names file 0644 and folder 0755; `refresh` made them 0600/0700")
})

files.promise("a symbolic link at the credentials path: refused, its target untouched", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  await seedIssued(dir, fake)
  // The link points at a file an attacker wants read or overwritten (here: a copy of a real login).
  const target = path.join(dir, "elsewhere.json")
  fs.renameSync(credentialsPath(dir), target)
  fs.chmodSync(target, 0o644)
  fs.symlinkSync(target, credentialsPath(dir))
  const before = fs.readFileSync(target, "utf8")
  for (const args of [["token", "acme"], ["refresh", "acme"], ["logout", "--all"], ["status"]]) {
    const r = await run(args, cliEnv(dir))
    expect(r.code).toBe(4)
    expect(r.stderr).toContain("symbolic link")
    expect(r.stdout).toBe("")
  }
  expect(fs.readFileSync(target, "utf8")).toBe(before)
  expect(mode(target)).toBe(0o644)
  expect(fs.lstatSync(credentialsPath(dir)).isSymbolicLink()).toBe(true)
  expect((await warnings(dir)).join("\n")).toContain("symbolic link")
  t.note("token, refresh, logout --all, status: exit 4 naming the link; target bytes and mode unchanged")
})

files.promise("a FIFO at the credentials path (a read would block forever): refused at once", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  const { execFileSync } = await import("node:child_process")
  execFileSync("mkfifo", [credentialsPath(dir)])
  const started = Date.now()
  const r = await run(["token", "acme"], cliEnv(dir))
  expect(r.code).toBe(4)
  expect(r.stderr).toContain("not a regular file")
  expect(Date.now() - started).toBeLessThan(10_000)
  t.note(`exit 4 "not a regular file" in ${Date.now() - started} ms`)
})

files.promise("a corrupt file: moved aside and reported, never overwritten", "survived", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  const damaged = `{"version":1,"credentials":[{"_tag":"OAuthCredential","provider":"acme","tokens":{"accessToken":"half-writ`
  fs.writeFileSync(credentialsPath(dir), damaged, { mode: 0o600 })
  const r = await run(["token", "acme"], cliEnv(dir))
  expect(r.code).toBe(4)
  const aside = fs.readdirSync(dir).filter((f) => f.startsWith("credentials.json.corrupt-"))
  expect(aside.length).toBe(1)
  expect(r.stderr).toContain(`moved to ${path.join(dir, aside[0]!)}`)
  expect(r.stderr).not.toContain("half-writ")
  const keptAt = path.join(dir, aside[0]!)
  expect(fs.readFileSync(keptAt, "utf8")).toBe(damaged)
  expect(mode(keptAt)).toBe(0o600)
  // The next login starts a new file; the damaged one stays as it was.
  await seedIssued(dir, fake)
  expect((await run(["refresh", "acme"], cliEnv(dir))).code).toBe(0)
  expect(JSON.parse(readCredentials(dir)).credentials.length).toBe(1)
  expect(fs.readFileSync(keptAt, "utf8")).toBe(damaged)
  t.note("exit 4 naming the .corrupt-* copy (same bytes, 0600); a new file after; the copy untouched")
})

files.promise("an entry that fails the schema: skipped, kept byte for byte by reads and writes, reported by field path only", "survived", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  await seedIssued(dir, fake)
  const doc = JSON.parse(readCredentials(dir))
  doc.credentials[0].tokens.expiresAt = "not-a-date-secretish-value"
  const damaged = JSON.stringify(doc)
  fs.writeFileSync(credentialsPath(dir), damaged, { mode: 0o600 })
  const token = await run(["token", "acme"], cliEnv(dir))
  expect(token.code).toBe(1)
  expect(token.stderr).toContain("credentials[0].tokens.expiresAt")
  expect(token.stderr).not.toContain("secretish")
  // A write of another login keeps the entry as it was.
  const key = await run(["login", "anthropic", "--with-api-key"], cliEnv(dir), "sk-ant-other-0123456789abcdef")
  expect(key.code, key.stderr).toBe(0)
  expect(readCredentials(dir)).toContain(JSON.stringify(doc.credentials[0]))
  expect(fs.readdirSync(dir).filter((f) => f.startsWith("credentials.json.corrupt-"))).toEqual([])
  // Logging out of it removes it, and only it.
  const out = await run(["logout", "acme"], cliEnv(dir))
  expect(out.code, out.stderr).toBe(0)
  expect(out.stderr).not.toContain("secretish")
  expect((JSON.parse(readCredentials(dir)) as { credentials: Array<{ provider: string }> }).credentials.map((c) => c.provider)).toEqual(["anthropic"])
  t.note("token: exit 1 naming credentials[0].tokens.expiresAt; kept byte for byte through another write; logout removes it alone")
})

files.promise("a file from a newer agent-auth: left in place, not written", "refused", async (t) => {
  const dir = home.acme(fake.issuer, fake.clientId)
  const newer = JSON.stringify({ version: 2, credentials: [], accounts: { acme: "x" } })
  fs.writeFileSync(credentialsPath(dir), newer, { mode: 0o600 })
  const r = await run(["logout", "--all"], cliEnv(dir))
  expect(r.code).toBe(4)
  expect(r.stderr).toContain("newer agent-auth")
  expect(readCredentials(dir)).toBe(newer)
  expect(fs.readdirSync(dir).filter((f) => f.includes("corrupt"))).toEqual([])
  t.note("exit 4 asking to upgrade; file byte for byte, nothing moved")
})
