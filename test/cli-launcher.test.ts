/**
 * The CLI's launcher (dist/agent-auth.mjs, written by packages/cli/build.mjs) runs a bundle
 * with V8's code cache. The cache may only ever make start-up faster: a missing, corrupt,
 * stale or unsafe cache file must give the same output and exit code as no cache at all.
 * The bundle is agent-auth-fast.cjs for the plain forms of `status` and `token`, else the
 * whole CLI (agent-auth.cjs); both must print the same for those command lines.
 * Each test runs a private copy of the built launcher and bundles, so it owns its cache.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { cliEnv, run, tempHome } from "./support/cli.js"

const dist = fileURLToPath(new URL("../packages/cli/dist/", import.meta.url))

const cleanup: Array<string> = []
afterEach(() => {
  for (const dir of cleanup.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/**
 * A private copy of the built CLI: its launcher, its bundles, and (once run) its own cache
 * folder. `bundle` is the one `status` and `token` run (agent-auth-fast.cjs).
 */
const copyOfCli = (files = ["agent-auth.mjs", "agent-auth.cjs", "agent-auth-fast.cjs"]) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-launcher-"))
  cleanup.push(dir)
  for (const file of files) fs.copyFileSync(path.join(dist, file), path.join(dir, file))
  return {
    dir,
    launcher: path.join(dir, "agent-auth.mjs"),
    bundle: path.join(dir, "agent-auth-fast.cjs"),
    cache: path.join(dir, ".code-cache")
  }
}

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runCli = (launcher: string, args: ReadonlyArray<string>, env: Record<string, string>, nodeArgs: ReadonlyArray<string> = []): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, launcher, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

const cacheFiles = (folder: string): Array<string> =>
  fs.existsSync(folder) ? fs.readdirSync(folder).filter((f) => f.endsWith(".bin")).map((f) => path.join(folder, f)) : []

/** The one cache file, once there is exactly one. */
const onlyCacheFile = (folder: string): string => {
  const files = cacheFiles(folder)
  expect(files).toHaveLength(1)
  return files[0]!
}

/** `status` in an empty home: exit 1 and the not-logged-in message, whatever the cache did. */
const expectStatus = (ran: Ran, reference: Ran) => {
  expect(ran.code).toBe(1)
  expect(ran.stdout).toContain("Not logged in to any provider")
  expect(ran).toStrictEqual(reference)
}

describe("the CLI launcher's code cache", () => {
  it("writes a private cache on the first run and uses it, unchanged, on the next", async () => {
    const cli = copyOfCli()
    const home = tempHome()
    cleanup.push(home)
    const reference = await runCli(cli.launcher, ["status"], cliEnv(home, { AGENT_AUTH_CODE_CACHE: "0" }))
    expect(fs.existsSync(cli.cache)).toBe(false)

    expectStatus(await runCli(cli.launcher, ["status"], cliEnv(home)), reference)
    const file = onlyCacheFile(cli.cache)
    expect(fs.statSync(cli.cache).mode & 0o777).toBe(0o700)
    expect(fs.statSync(file).mode & 0o777).toBe(0o600)
    expect(fs.statSync(file).size).toBeGreaterThan(100_000)
    const first = fs.statSync(file)

    expectStatus(await runCli(cli.launcher, ["status"], cliEnv(home)), reference)
    // Accepted, so not rewritten: the same file (a rewrite is a rename, a new inode).
    const second = fs.statSync(onlyCacheFile(cli.cache))
    expect(second.ino).toBe(first.ino)
    expect(second.mtimeMs).toBe(first.mtimeMs)
  })

  it("a corrupt cache file is rejected by V8, the CLI runs as without one, and the file is replaced", async () => {
    const cli = copyOfCli()
    const home = tempHome()
    cleanup.push(home)
    const reference = await runCli(cli.launcher, ["status"], cliEnv(home, { AGENT_AUTH_CODE_CACHE: "0" }))
    await runCli(cli.launcher, ["status"], cliEnv(home))
    const file = onlyCacheFile(cli.cache)
    const garbage = Buffer.alloc(fs.statSync(file).size, 0x5a)
    fs.writeFileSync(file, garbage)

    expectStatus(await runCli(cli.launcher, ["status"], cliEnv(home)), reference)
    expect(fs.readFileSync(onlyCacheFile(cli.cache)).equals(garbage)).toBe(false)
    // And the replacement is used again.
    expectStatus(await runCli(cli.launcher, ["status"], cliEnv(home)), reference)
  })

  it("a cache file other users could have written is never used: it is replaced by a private one", async () => {
    const cli = copyOfCli()
    const home = tempHome()
    cleanup.push(home)
    const reference = await runCli(cli.launcher, ["status"], cliEnv(home, { AGENT_AUTH_CODE_CACHE: "0" }))
    await runCli(cli.launcher, ["status"], cliEnv(home))
    const file = onlyCacheFile(cli.cache)
    fs.chmodSync(file, 0o666)
    const exposed = fs.statSync(file)

    expectStatus(await runCli(cli.launcher, ["status"], cliEnv(home)), reference)
    const now = fs.statSync(onlyCacheFile(cli.cache))
    // Valid data, yet not trusted: written anew (new inode), private again.
    expect(now.ino).not.toBe(exposed.ino)
    expect(now.mode & 0o777).toBe(0o600)
  })

  it("a new bundle never meets the old cache: a new file, and the stale one is removed", async () => {
    const cli = copyOfCli()
    const home = tempHome()
    cleanup.push(home)
    const reference = await runCli(cli.launcher, ["status"], cliEnv(home, { AGENT_AUTH_CODE_CACHE: "0" }))
    await runCli(cli.launcher, ["status"], cliEnv(home))
    const old = onlyCacheFile(cli.cache)
    // A rebuilt bundle: other content (one more statement), another size and mtime.
    fs.appendFileSync(cli.bundle, "\nvoid 0;\n")

    expectStatus(await runCli(cli.launcher, ["status"], cliEnv(home)), reference)
    const fresh = onlyCacheFile(cli.cache)
    expect(fresh).not.toBe(old)
    expect(fs.existsSync(old)).toBe(false)
  })

  it("AGENT_AUTH_CODE_CACHE=0 runs from source and writes nothing", async () => {
    const cli = copyOfCli()
    const home = tempHome()
    cleanup.push(home)
    const ran = await runCli(cli.launcher, ["token", "anthropic"], cliEnv(home, { AGENT_AUTH_CODE_CACHE: "0", ANTHROPIC_API_KEY: "sk-ant-launcher" }))
    expect(ran.code).toBe(0)
    expect(ran.stdout).toBe("sk-ant-launcher\n")
    expect(fs.existsSync(cli.cache)).toBe(false)
  })
})

describe("the small bundle for status and token", () => {
  it("runs status and token without the whole CLI, which runs every other command", async () => {
    const cli = copyOfCli(["agent-auth.mjs", "agent-auth-fast.cjs"])
    const home = tempHome()
    cleanup.push(home)
    const status = await runCli(cli.launcher, ["status"], cliEnv(home))
    expect(status.code).toBe(1)
    expect(status.stdout).toContain("Not logged in to any provider")
    const token = await runCli(cli.launcher, ["token", "anthropic"], cliEnv(home, { ANTHROPIC_API_KEY: "sk-ant-small" }))
    expect(token).toStrictEqual({ code: 0, stdout: "sk-ant-small\n", stderr: "" })
    // Anything else needs agent-auth.cjs, absent from this copy.
    for (const args of [["providers"], ["status", "--help"], ["token", "demo"]]) {
      const other = await runCli(cli.launcher, args, cliEnv(home))
      expect(other.code).not.toBe(0)
      expect(other.stderr).toContain("agent-auth.cjs")
    }
  })

  it("without agent-auth-fast.cjs, the whole CLI runs status and token", async () => {
    const cli = copyOfCli(["agent-auth.mjs", "agent-auth.cjs"])
    const home = tempHome()
    cleanup.push(home)
    const status = await runCli(cli.launcher, ["status"], cliEnv(home))
    expect(status.code).toBe(1)
    expect(status.stdout).toContain("Not logged in to any provider")
  })

  it("on a Node without process.getBuiltinModule (before 20.16), the launcher imports what it needs", async () => {
    const cli = copyOfCli()
    const home = tempHome()
    cleanup.push(home)
    const older = path.join(cli.dir, "older-node.cjs")
    fs.writeFileSync(older, "delete process.getBuiltinModule\n")
    for (const args of [["status"], ["providers"]]) {
      const reference = await runCli(cli.launcher, args, cliEnv(home))
      expect(await runCli(cli.launcher, args, cliEnv(home), ["--require", older])).toStrictEqual(reference)
    }
    const token = await runCli(cli.launcher, ["token", "anthropic"], cliEnv(home, { ANTHROPIC_API_KEY: "sk-ant-older" }), ["--require", older])
    expect(token).toStrictEqual({ code: 0, stdout: "sk-ant-older\n", stderr: "" })
  })

  it("prints what the whole CLI prints, and exits with its code", async () => {
    const cli = copyOfCli()
    const empty = tempHome()
    const stored = tempHome()
    cleanup.push(empty, stored)
    // A stored key in two accounts, a key in config.json, a key in the environment.
    expect((await run(["login", "anthropic", "--with-api-key"], cliEnv(stored), "sk-ant-stored-default")).code).toBe(0)
    expect((await run(["login", "anthropic", "--with-api-key", "--account", "work"], cliEnv(stored), "sk-ant-stored-work")).code).toBe(0)
    const config = path.join(stored, "config.json")
    const written = fs.existsSync(config) ? JSON.parse(fs.readFileSync(config, "utf8")) as object : {}
    fs.writeFileSync(config, JSON.stringify({ ...written, apiKeys: { openai: "sk-config-key" } }), { mode: 0o600 })
    const homes = { empty: cliEnv(empty), stored: cliEnv(stored, { OPENAI_API_KEY: "sk-env-key" }) }
    const lines: ReadonlyArray<ReadonlyArray<string>> = [
      ["status"],
      ["status", "--json"],
      ["status", "anthropic"],
      ["status", "openai", "--json"],
      ["status", "nope"],
      ["status", "--verbose"],
      ["token", "anthropic"],
      ["token", "anthropic", "--json"],
      ["token", "--account", "work", "anthropic"],
      ["token", "anthropic", "--account", "nobody"],
      ["token", "openai", "--json"],
      ["token", "nope"]
    ]
    // Debug lines carry the time; the rest must be the same to the byte.
    const untimed = (ran: Ran) => ({ ...ran, stderr: ran.stderr.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /gm, "") })
    for (const [name, env] of Object.entries(homes)) {
      for (const args of lines) {
        const small = untimed(await runCli(cli.launcher, args, env))
        const whole = untimed(await runCli(cli.launcher, args, { ...env, AGENT_AUTH_FAST: "0" }))
        expect({ home: name, args, ...small }).toStrictEqual({ home: name, args, ...whole })
      }
    }
    // 48 runs of the CLI: on a loaded machine this takes longer than the default 30 s.
  }, 180_000)
})
