/**
 * The CLI's launcher (dist/agent-auth.mjs, written by packages/cli/build.mjs) runs the bundle
 * with V8's code cache. The cache may only ever make start-up faster: a missing, corrupt,
 * stale or unsafe cache file must give the same output and exit code as no cache at all.
 * Each test runs a private copy of the built launcher and bundle, so it owns its cache.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { cliEnv, tempHome } from "./support/cli.js"

const dist = fileURLToPath(new URL("../packages/cli/dist/", import.meta.url))

const cleanup: Array<string> = []
afterEach(() => {
  for (const dir of cleanup.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** A private copy of the built CLI: its launcher, its bundle, and (once run) its own cache folder. */
const copyOfCli = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-launcher-"))
  cleanup.push(dir)
  for (const file of ["agent-auth.mjs", "agent-auth.cjs"]) fs.copyFileSync(path.join(dist, file), path.join(dir, file))
  return { dir, launcher: path.join(dir, "agent-auth.mjs"), bundle: path.join(dir, "agent-auth.cjs"), cache: path.join(dir, ".code-cache") }
}

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runCli = (launcher: string, args: ReadonlyArray<string>, env: Record<string, string>): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [launcher, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
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
  expect(ran.stderr).toContain("Not logged in to any provider")
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
