/**
 * `login <provider> --with-api-key`, end to end through the bundle: the key comes from
 * stdin only, is stored like a token (credentials.json, 0600), `status` shows it masked as a
 * stored key, `token` prints it, `logout` removes it; the precedence environment → config.json
 * / stored key → OAuth holds per mode. Every run is `--verbose`, and the key must appear in
 * no argv, no log line and no error message.
 */
import { FakeAuthServer } from "@agent-auth/testing"
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { cliEnv, finish, followAuthorization, nextEvent, run, start, tempHome } from "./support/cli.js"
import { serveForFile } from "./support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile({}, (server) => (fake = server))

const KEY = "sk-proj-CANARY-api-key-7f3a9c1e5b2d4f6a8c0e"

const writeConfig = (home: string, extra: Record<string, unknown> = {}, acme: Record<string, unknown> = {}) =>
  fs.writeFileSync(
    path.join(home, "config.json"),
    JSON.stringify({ providers: { acme: { kind: "oidc", issuer: fake.issuer, clientId: fake.clientId, ...acme } }, ...extra })
  )

const credentials = (home: string) =>
  JSON.parse(fs.readFileSync(path.join(home, "credentials.json"), "utf8")).credentials as Array<Record<string, unknown>>

/** Every output of a run, for the "the key appears nowhere" checks. */
const everything = (r: { stdout: string; stderr: string }) => r.stdout + r.stderr

describe("login --with-api-key", () => {
  it("stdin → store (0600) → status (masked) → token → logout → gone; the key in no argv, log or message", { timeout: 60_000 }, async () => {
    const home = tempHome()
    const env = cliEnv(home)
    const args = ["login", "openai", "--with-api-key", "--verbose"]
    const child = start(args, env)
    expect(child.spawnargs.join(" ")).not.toContain(KEY)
    const login = await finish(child, `${KEY}\n`)
    expect(login.code).toBe(0)
    expect(everything(login)).not.toContain(KEY)
    expect(login.stderr).toContain("Stored an API key for OpenAI (sk-p…8c0e)")

    expect(fs.statSync(path.join(home, "credentials.json")).mode & 0o777).toBe(0o600)
    expect(credentials(home)).toEqual([expect.objectContaining({ _tag: "ApiKeyCredential", provider: "openai", account: "default", key: KEY })])

    const status = await run(["status", "openai", "--verbose"], env)
    expect(status.code).toBe(0)
    expect(status.stdout).toContain("✓ API key stored in")
    expect(status.stdout).toContain("Key: sk-p…8c0e")
    expect(everything(status)).not.toContain(KEY)
    const statusJson = JSON.parse((await run(["status", "openai", "--json"], env)).stdout)
    expect(statusJson.providers[0]).toMatchObject({
      provider: "openai",
      usable: true,
      credentials: [{ source: "stored_key", account: "default", active: true, key: "sk-p…8c0e" }]
    })

    // A store opened to others is reported by status, and closed by the next write.
    fs.chmodSync(path.join(home, "credentials.json"), 0o644)
    const exposed = await run(["status", "openai"], env)
    expect(exposed.stdout).toContain("is accessible to other users (mode 0644)")

    const token = await run(["token", "openai", "--verbose"], env)
    expect(token.stdout).toBe(`${KEY}\n`)
    expect(token.stderr).not.toContain(KEY)
    expect(token.stderr).toContain("credential chosen")

    const out = await run(["logout", "openai", "--verbose"], env)
    expect(out.code).toBe(0)
    expect(out.stderr).toContain("Deleted openai (default)")
    expect(everything(out)).not.toContain(KEY)
    expect(credentials(home)).toEqual([])
    expect(fs.statSync(path.join(home, "credentials.json")).mode & 0o777).toBe(0o600)
    expect((await run(["status", "openai"], env)).code).toBe(1)
    expect((await run(["token", "openai"], env)).code).toBe(1)
  })

  it("no option takes a key: a key on the command line is refused (exit 2), never printed back, never stored", async () => {
    const home = tempHome()
    const env = cliEnv(home)
    const lines = [
      ...["--api-key", "--key", "--token"].map((option) => ["login", "openai", option, KEY]),
      // `--with-api-key` is a flag that reads stdin: a value after it, or in it, is no key.
      ["login", "openai", "--with-api-key", KEY],
      ["login", "openai", `--with-api-key=${KEY}`],
      ["token", "openai", KEY]
    ]
    for (const args of lines) {
      const r = await run(args, env, "")
      expect({ args: args.slice(0, 3), code: r.code }).toEqual({ args: args.slice(0, 3), code: 2 })
      // @effect/cli would quote an unexpected argument in its usage error: refused before it reads the line.
      expect(everything(r)).not.toContain(KEY)
      expect(r.stderr).toContain("looks like an API key or token")
      expect(r.stderr).toContain("--with-api-key < key.txt")
    }
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
  })

  it("a store that refuses the write: the error names the file, never the key", async () => {
    const home = tempHome()
    fs.symlinkSync(path.join(home, "elsewhere.json"), path.join(home, "credentials.json"))
    const r = await run(["login", "anthropic", "--with-api-key", "--verbose"], cliEnv(home), KEY)
    expect(r.code).toBe(4)
    expect(r.stderr).toContain("credentials.json")
    expect(everything(r)).not.toContain(KEY)
  })

  it("an empty stdin, or a provider that takes no key, is a usage error (2) and stores nothing", async () => {
    const home = tempHome()
    const empty = await run(["login", "anthropic", "--with-api-key"], cliEnv(home), "  \n")
    expect(empty.code).toBe(2)
    expect(empty.stderr).toContain("No key was given on stdin")
    const demo = await run(["login", "demo", "--with-api-key"], cliEnv(home), KEY)
    expect(demo.code).toBe(2)
    expect(demo.stderr).toContain("demo takes no API key")
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
  })

  it("precedence through the CLI: environment, then config.json, then the stored key; per mode against an OAuth login", async () => {
    const home = tempHome()
    writeConfig(home)
    const env = cliEnv(home)
    // An OAuth login to acme, as a person would do it, and a stored key for acme and openai.
    const child = start(["login", "acme", "--no-browser", "--json"], env)
    const done = finish(child)
    await followAuthorization(String((await nextEvent(child, "authorization_url")).url))
    expect((await done).code).toBe(0)
    const access = (credentials(home).find((c) => c.provider === "acme")!.tokens as { accessToken: string }).accessToken
    for (const p of ["acme", "openai"]) {
      expect((await run(["login", p, "--with-api-key"], env, `${KEY}-${p}`)).code).toBe(0)
    }
    const token = async (p: string, extra: Record<string, string> = {}) => {
      const r = await run(["token", p], cliEnv(home, extra))
      expect(r.code, r.stderr).toBe(0)
      return r.stdout.trim()
    }

    // openai (auto): env, then config.json, then the stored key.
    writeConfig(home, { apiKeys: { openai: "sk-from-config-json-000000000000" } })
    expect(await token("openai", { OPENAI_API_KEY: "sk-from-env-0000000000000000000" })).toBe("sk-from-env-0000000000000000000")
    expect(await token("openai")).toBe("sk-from-config-json-000000000000")
    writeConfig(home)
    expect(await token("openai")).toBe(`${KEY}-openai`)

    // acme, with both a stored key and a login: the mode decides.
    expect(await token("acme")).toBe(`${KEY}-acme`) // auto: keys first
    writeConfig(home, {}, { mode: "prefer_oauth" })
    expect(await token("acme")).toBe(access)
    writeConfig(home, {}, { mode: "oauth_only" })
    expect(await token("acme")).toBe(access)
    writeConfig(home, {}, { mode: "api_key_only" })
    expect(await token("acme")).toBe(`${KEY}-acme`)

    // status lists both for acme, in the mode's order, the one in use marked.
    writeConfig(home, {}, { mode: "prefer_oauth" })
    const status = JSON.parse((await run(["status", "acme", "--json"], env)).stdout).providers[0]
    expect(status.credentials.map((c: { source: string; active: boolean }) => `${c.source}:${c.active}`)).toEqual([
      "oauth:true",
      "stored_key:false"
    ])
  }, 90_000)
})
