/**
 * Hardening, API keys and provider text at the CLI (the bundle, a child process):
 * - a bad key on stdin (two lines, control bytes, a space, Ctrl-D, > 4 KiB, empty) is
 *   refused with exit 2 before anything is replaced: the stored key stays byte-identical;
 * - a key on the command line, of any shape, is refused by position and appears in no output;
 * - text from a provider (error_description, displayName, device messages) reaches stderr
 *   without one 0x1b (ESC) or 0x07 (BEL) byte.
 */
import { afterAll, beforeAll, expect } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bundle, type CliResult, cliEnv, run, tempHome } from "../support/cli.js"
import { serve, type Served } from "./support/hostile.js"
import { seedLogin } from "./support/seed.js"
import { area } from "./support/table.js"

const homes: Array<string> = []
afterAll(() => homes.forEach((h) => fs.rmSync(h, { recursive: true, force: true })))
const newHome = () => {
  const h = tempHome()
  homes.push(h)
  return h
}

const everything = (r: CliResult) => r.stdout + r.stderr

/** Runs with `input` on stdin, ignoring EPIPE when the CLI stops reading early (it must, past 4 KiB). */
const runWith = (args: ReadonlyArray<string>, env: Record<string, string>, input: string | Buffer): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundle, ...args], { env, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.stdin.on("error", () => {})
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
    child.stdin.end(input)
  })

const GOOD = "sk-ant-api03-GOODKEY-0123456789abcdef"

const keys = area("keys and provider text", import.meta.url)

const badStdin: ReadonlyArray<[string, string | Buffer, string]> = [
  ["two lines (a .env file)", `${GOOD}\nOPENAI_API_KEY=sk-other-0123456789abcdef\n`, "more than one line"],
  ["control bytes (an escape sequence)", `sk-ant-\x1b[31mred-0123456789\n`, "control characters"],
  ["a space inside", "sk-ant-api03 0123456789abcdef\n", "space"],
  ["Ctrl-D bytes (\\x04\\x04)", "\x04\x04", "control characters"],
  ["50 MB (more than 4 KiB)", Buffer.alloc(50 * 1024 * 1024, "k"), "longer than 4 KiB"],
  ["empty", "", "No key was given on stdin"]
]

for (const [title, input, says] of badStdin) {
  keys.promise(`stdin key: ${title}`, "refused", async (t) => {
    const home = newHome()
    const env = cliEnv(home)
    expect((await runWith(["login", "anthropic", "--with-api-key"], env, `${GOOD}\n`)).code).toBe(0)
    const before = fs.readFileSync(path.join(home, "credentials.json"))
    const started = Date.now()
    const r = await runWith(["login", "anthropic", "--with-api-key"], env, input)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(says)
    expect(fs.readFileSync(path.join(home, "credentials.json")).equals(before)).toBe(true)
    const text = typeof input === "string" ? input.trim() : ""
    if (text.length >= 12) expect(everything(r)).not.toContain(text.slice(0, 12))
    t.note(`exit 2 ("${says}"), stored key byte-identical${typeof input === "string" ? "" : `, ${Date.now() - started} ms`}`)
  }, { timeout: 60_000 })
}

const argvKeys: ReadonlyArray<[string, ReadonlyArray<string>, number, string]> = [
  ["a key with no known prefix after --with-api-key", ["login", "anthropic", "--with-api-key", "0123456789abcdefQRSTUV"], 4, "0123456789abcdefQRSTUV"],
  ["a short key of any shape after --with-api-key", ["login", "anthropic", "--with-api-key", "k9"], 4, "k9"],
  ["a Groq key where the provider name goes", ["login", "gsk_Zq8XWm2Lk4Np7Rt1Vb6Yc3Hd9Fs5Gj0Ka2Qe"], 2, "gsk_Zq8XWm2Lk4Np7Rt1Vb6Yc3Hd9Fs5Gj0Ka2Qe"],
  ["a mixed-case key where the provider name goes (status)", ["status", "Zq8XWm2Lk4Np7Rt1"], 2, "Zq8XWm2Lk4Np7Rt1"],
  ["--with-api-key=VALUE", ["login", "anthropic", "--with-api-key=plainvalue42"], 3, "plainvalue42"],
  ["a 64-character hex key as the provider of token", ["token", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"], 2, "0123456789abcdef0123456789abcdef"],
  ["a key in an MCP server URL's query (token URL)", ["token", "https://mcp.example.com/mcp?api_key=sk-proj-Zq8XWm2Lk4Np7Rt1Vb6Yc3"], 2, "Zq8XWm2Lk4Np7Rt1Vb6Yc3"],
  ["a key in an MCP server URL's path (mcp login)", ["mcp", "login", "https://mcp.example.com/s/Zq8XWm2Lk4Np7Rt1Vb6Yc3Hd9Fs5Gj0K/mcp"], 3, "Zq8XWm2Lk4Np7Rt1Vb6Yc3Hd9Fs5Gj0K"],
  ["a password in an MCP server URL (mcp logout)", ["mcp", "logout", "https://ada:hunter2hunter2@mcp.example.com/mcp"], 3, "hunter2hunter2"]
]

for (const [title, args, position, secret] of argvKeys) {
  keys.promise(`argv key: ${title}`, "refused", async (t) => {
    const home = newHome()
    const r = await run(args, cliEnv(home), "")
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`Argument ${position} `)
    expect(r.stderr).toContain("it is not shown")
    expect(everything(r)).not.toContain(secret)
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
    t.note(`exit 2, "Argument ${position}", the value in no output, nothing stored`)
  })
}

// ---------------------------------------------------------------- provider text

const HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31mEVIL\x07"
let issuer: Served
/** What the hostile issuer puts in its answers for the current case. */
let text: { description: string; userCode: string; verificationUri: string } = { description: "", userCode: "", verificationUri: "" }

beforeAll(async () => {
  issuer = await serve((req, res, body) => {
    const origin = issuer.origin
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" })
      res.end(JSON.stringify(value))
    }
    const url = req.url ?? ""
    if (url.startsWith("/.well-known/")) {
      return json(200, {
        issuer: origin,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        device_authorization_endpoint: `${origin}/device`,
        jwks_uri: `${origin}/jwks`
      })
    }
    if (url === "/device") {
      return json(200, {
        device_code: "device-code-1",
        user_code: `WDJB-MJHT${text.userCode}`,
        verification_uri: `${origin}/activate${text.verificationUri}`,
        expires_in: 30,
        interval: 1
      })
    }
    if (url === "/token") {
      void body
      return json(400, { error: "access_denied", error_description: `The user said no${text.description}` })
    }
    json(404, {})
  })
})
afterAll(() => issuer?.close())

const acmeHome = (displayName = "Acme") => {
  const home = newHome()
  fs.writeFileSync(
    path.join(home, "config.json"),
    JSON.stringify({ providers: { acme: { kind: "oidc", issuer: issuer.origin, clientId: "agent-cli", displayName } } })
  )
  return home
}

const noEscapes = (r: CliResult) => {
  expect(r.stderr.includes("\x1b")).toBe(false)
  expect(r.stderr.includes("\x07")).toBe(false)
  expect(r.stdout.includes("\x1b")).toBe(false)
  expect(r.stdout.includes("\x07")).toBe(false)
}

keys.promise("ESC/BEL in error_description (device login's token answer)", "refused", async (t) => {
  text = { description: HOSTILE, userCode: "", verificationUri: "" }
  const r = await run(["login", "acme", "--device"], cliEnv(acmeHome()))
  expect(r.code).toBe(1)
  expect(r.stderr).toContain("The user said no")
  expect(r.stderr).toContain("EVIL")
  noEscapes(r)
  t.note("exit 1, the description shown as text: no 0x1b or 0x07 on stderr")
}, { timeout: 60_000 })

keys.promise("ESC/BEL in error_description (a refresh's token answer)", "refused", async (t) => {
  text = { description: HOSTILE, userCode: "", verificationUri: "" }
  const home = acmeHome()
  await seedLogin(home, { access: "at-canary-0000", refresh: "rt-canary-0000", expiresIn: -60 })
  const r = await run(["refresh", "acme"], cliEnv(home))
  expect(r.code).not.toBe(0)
  expect(r.code).not.toBe(70)
  expect(r.stderr).toContain("EVIL")
  noEscapes(r)
  t.note(`exit ${r.code}, the description shown as text: no 0x1b or 0x07 on stderr`)
}, { timeout: 60_000 })

keys.promise("ESC/BEL in displayName (config.json)", "refused", async (t) => {
  text = { description: "", userCode: "", verificationUri: "" }
  const r = await run(["login", "acme", "--device"], cliEnv(acmeHome(`Acme${HOSTILE}`)))
  expect(r.code).toBe(1)
  expect(r.stderr).toContain("To sign in to Acme")
  noEscapes(r)
  t.note("the name shown as text: no 0x1b or 0x07 on stderr")
}, { timeout: 60_000 })

keys.promise("ESC/BEL in device messages (user code, verification URI)", "refused", async (t) => {
  text = { description: "", userCode: HOSTILE, verificationUri: HOSTILE }
  const r = await run(["login", "acme", "--device", "--json"], cliEnv(acmeHome()))
  expect(r.code).toBe(1)
  expect(r.stderr).toContain("WDJB-MJHT")
  expect(r.stderr).toContain("/activate")
  noEscapes(r)
  t.note("code and URI shown as text (stderr and --json stdout): no 0x1b or 0x07")
}, { timeout: 60_000 })
