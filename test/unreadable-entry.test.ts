/**
 * One login in credentials.json that no longer decodes, black-box through the bundle: the
 * other logins keep working, `status` shows it as ✗ with the reason (once, on stdout, and
 * in --json), other commands warn once, and `logout --account` of it removes it while a
 * write of another login keeps its bytes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { cliEnv, run, tempHome } from "./support/cli.js"

const setup = async (store = "file") => {
  const home = tempHome()
  // `auto` here has no session bus: the file holds everything, as on a machine without a keychain.
  const env = cliEnv(home, { AGENT_AUTH_STORE: store })
  for (const [account, key] of [["default", "sk-ant-good-0123456789abcdef"], ["old", "sk-ant-old-0123456789abcdef"]] as const) {
    const r = await run(["login", "anthropic", "--with-api-key", "--account", account], env, key)
    expect(r.code, r.stderr).toBe(0)
  }
  const file = path.join(home, "credentials.json")
  const doc = JSON.parse(fs.readFileSync(file, "utf8")) as { credentials: Array<Record<string, unknown>> }
  for (const c of doc.credentials) if (c.account === "old") c.obtainedAt = "yesterday"
  fs.writeFileSync(file, JSON.stringify(doc, null, 2), { mode: 0o600 })
  const badText = JSON.stringify(doc.credentials.find((c) => c.account === "old"), null, 2).replace(/\n/g, "\n    ")
  return { home, env, file, badText }
}

const reason = "credentials[1].obtainedAt does not match the schema"

describe("one unreadable login in credentials.json", () => {
  it.each(["file", "auto"])("status (store %s) shows it as ✗ with the reason and the fix, on stdout only; the good login is used", async (store) => {
    const { home, env, file } = await setup(store)
    try {
      const r = await run(["status"], env)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toBe("")
      expect(r.stdout).toContain(
        `  ✗ Stored login (account old) in ${file} could not be read (${reason}): ` +
          "`agent-auth login anthropic --with-api-key --account old` replaces it, `agent-auth logout anthropic --account old` removes it\n"
      )
      expect(r.stdout).toMatch(/✓ API key stored in .* \(account default\)/)
      expect(r.stdout).not.toContain("sk-ant-old")
      const json = await run(["status", "--json"], env)
      expect(json.stderr).toBe("")
      const report = JSON.parse(json.stdout) as { providers: Array<{ provider: string; credentials: Array<Record<string, unknown>> }> }
      const entries = report.providers.find((p) => p.provider === "anthropic")!.credentials
      expect(entries.find((e) => e.source === "unreadable")).toEqual({
        source: "unreadable",
        store: file,
        account: "old",
        active: false,
        eligible: false,
        usable: false,
        error: reason
      })
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  })

  it("token of the good login works and warns once; another write keeps the bad entry's bytes; logout --account removes it", async () => {
    const { home, env, file, badText } = await setup()
    try {
      const token = await run(["token", "anthropic"], env)
      expect(token.code, token.stderr).toBe(0)
      expect(token.stdout).toBe("sk-ant-good-0123456789abcdef\n")
      expect(token.stderr.trim().split("\n")).toHaveLength(1)
      expect(token.stderr).toContain(`warn agent-auth: the stored login anthropic/old in ${file} could not be read (${reason})`)
      // A write of another login keeps the unreadable entry exactly as it was written.
      const more = await run(["login", "anthropic", "--with-api-key", "--account", "zeta"], env, "sk-ant-zeta-0123456789abcdef")
      expect(more.code, more.stderr).toBe(0)
      expect(fs.readFileSync(file, "utf8")).toContain(badText)
      const out = await run(["logout", "anthropic", "--account", "old"], env)
      expect(out.code, out.stderr).toBe(0)
      expect(out.stdout + out.stderr).toContain(`Deleted the unreadable login anthropic (old) from ${file}`)
      const left = JSON.parse(fs.readFileSync(file, "utf8")) as { credentials: Array<{ account: string }> }
      expect(left.credentials.map((c) => c.account)).toEqual(["default", "zeta"])
      const after = await run(["status", "anthropic"], env)
      expect(after.stdout).not.toContain("✗")
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  })

  it("logout --all removes it too", async () => {
    const { home, env, file } = await setup()
    try {
      const out = await run(["logout", "--all"], env)
      expect(out.code, out.stderr).toBe(0)
      expect(out.stderr).toContain(`Deleted the unreadable login anthropic (old) from ${file}`)
      expect((JSON.parse(fs.readFileSync(file, "utf8")) as { credentials: Array<unknown> }).credentials).toEqual([])
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  })
})
