/**
 * `agent-auth login` without a provider: a menu on a terminal, a usage error without one.
 * The terminal is a real pseudo-terminal: util-linux `script` runs the bundle on one and
 * relays this test's keystrokes to it, so raw mode, echo and redrawing are the real thing.
 */
import { describe, expect, it } from "@effect/vitest"
import { FakeAuthServer } from "@agent-auth/testing"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bundle, cliEnv, run, tempHome } from "./support/cli.js"
import { freePort } from "./support/demo.js"
import { serveForFile } from "./support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile({}, (server) => (fake = server))

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

interface Pty {
  /** Everything the terminal showed so far (stdout and stderr of the command, and echo). */
  readonly output: () => string
  /** Resolves once the terminal has shown `text`. */
  readonly waitFor: (text: string | RegExp) => Promise<void>
  readonly type: (keys: string) => void
  /** The command's exit code (`script -e` passes it on). */
  readonly exit: Promise<number | null>
}

/** Runs the bundle on a pseudo-terminal; killed (with its process group) after `ms`. */
const onTerminal = (args: ReadonlyArray<string>, env: Record<string, string>, ms = 20_000): Pty => {
  const command = [process.execPath, bundle, ...args].map(quote).join(" ")
  const child = spawn("script", ["-qfec", command, "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"], detached: true })
  let output = ""
  const waiters: Array<() => void> = []
  const onData = (d: Buffer) => {
    output += d.toString("utf8")
    for (const w of waiters.splice(0)) w()
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, "SIGKILL")
    } catch {
      // gone already
    }
  }, ms)
  const exit = new Promise<number | null>((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer)
      for (const w of waiters.splice(0)) w()
      resolve(code)
    })
  )
  const waitFor = (text: string | RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (typeof text === "string" ? output.includes(text) : text.test(output)) return resolve()
        if (child.exitCode !== null || child.signalCode !== null) {
          return reject(new Error(`the command ended before showing ${String(text)}:\n${output}`))
        }
        waiters.push(check)
      }
      check()
    })
  return { output: () => output, waitFor, type: (keys) => void child.stdin.write(keys), exit }
}

/** A home with a configured OIDC provider (at the fake server) and the demo on a port of its own. */
const home = async (): Promise<string> => {
  const dir = tempHome()
  const demoPort = await freePort()
  fs.writeFileSync(
    path.join(dir, "config.json"),
    JSON.stringify({
      providers: {
        acme: { kind: "oidc", displayName: "Acme Corp", issuer: fake.issuer, clientId: fake.clientId },
        demo: { issuer: `http://127.0.0.1:${demoPort}` }
      }
    })
  )
  return dir
}

const stored = (dir: string) =>
  JSON.parse(fs.readFileSync(path.join(dir, "credentials.json"), "utf8")).credentials as Array<Record<string, unknown>>

const DOWN = "\u001b[B"

describe("agent-auth login: the provider menu", () => {
  it("lists every provider with its methods, marks the usable one, and stores the API key chosen (never echoed)", async () => {
    const dir = await home()
    const pty = onTerminal(["login"], cliEnv(dir, { ANTHROPIC_API_KEY: "sk-ant-from-the-environment-0001" }))
    await pty.waitFor("Esc to cancel")
    const menu = pty.output()
    const lines = menu.split(/\r?\n/)
    const line = (label: string) => lines.find((l) => l.includes(label)) ?? ""
    expect(line("1. OpenAI — sign in with ChatGPT")).not.toContain("usable")
    expect(line("2. OpenAI — API key")).not.toContain("usable")
    expect(line("3. Anthropic — API key")).toContain("✓ usable now (API key from ANTHROPIC_API_KEY)")
    expect(line("4. Google Gemini API — API key")).not.toContain("usable")
    expect(line("5. Demo")).toContain("sign in")
    expect(line("6. Acme Corp — sign in")).not.toContain("usable")
    expect(menu).toContain("❯ 1. OpenAI")

    pty.type("2")
    await pty.waitFor("❯ 2. OpenAI — API key")
    pty.type("\r")
    await pty.waitFor("it is not echoed")
    const key = "sk-proj-typed-on-the-terminal-0123456789"
    pty.type(`${key}\r`)
    expect(await pty.exit).toBe(0)
    const out = pty.output()
    expect(out).toContain("(next time: agent-auth login openai --with-api-key)")
    expect(out).toContain("Stored an API key for OpenAI")
    expect(out).not.toContain(key)
    expect(out).not.toContain("sk-ant-from-the-environment")
    expect(stored(dir)).toEqual([expect.objectContaining({ _tag: "ApiKeyCredential", provider: "openai", account: "default", key })])
  })

  it("the arrow keys reach the demo's sign-in, which starts its server and completes by itself", async () => {
    const dir = await home()
    const pty = onTerminal(["login"], cliEnv(dir))
    await pty.waitFor("Esc to cancel")
    pty.type(DOWN + DOWN + DOWN + DOWN)
    await pty.waitFor("❯ 5. Demo")
    pty.type("\r")
    expect(await pty.exit).toBe(0)
    expect(pty.output()).toContain("Logged in to Demo")
    expect(stored(dir)).toEqual([expect.objectContaining({ _tag: "OAuthCredential", provider: "demo" })])
  })

  it("a configured OIDC provider from the menu signs in with its browser flow (--no-browser: the URL is followed here)", async () => {
    const dir = await home()
    const pty = onTerminal(["login", "--no-browser"], cliEnv(dir))
    await pty.waitFor("Esc to cancel")
    pty.type("6\r")
    await pty.waitFor(/http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+/)
    const url = pty.output().match(/(http:\/\/127\.0\.0\.1:\d+\/authorize\?[^\s\u001b]+)/)![1]!
    // What a browser does: follow the authorization URL to the login's loopback callback.
    let next = url
    for (let i = 0; i < 5; i++) {
      const r = await fetch(next, { redirect: "manual" })
      const location = r.headers.get("location")
      if (location === null) break
      next = new URL(location, next).toString()
    }
    expect(await pty.exit).toBe(0)
    expect(pty.output()).toContain(`Logged in to Acme Corp as ${FakeAuthServer.defaultUser.email}`)
    expect(stored(dir)).toEqual([expect.objectContaining({ _tag: "OAuthCredential", provider: "acme" })])
  })

  it("Esc cancels: exit 130, nothing stored", async () => {
    const dir = await home()
    const pty = onTerminal(["login"], cliEnv(dir))
    await pty.waitFor("Esc to cancel")
    pty.type("\u001b")
    expect(await pty.exit).toBe(130)
    expect(pty.output()).toContain("cancelled; nothing was stored")
    expect(fs.existsSync(path.join(dir, "credentials.json"))).toBe(false)
  })

  it("without a terminal: a usage error (exit 2) listing each provider's ways to log in", async () => {
    const r = await run(["login"], cliEnv(await home()))
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    const expected: ReadonlyArray<readonly [string, string]> = [
      ["agent-auth login openai ", "OpenAI — sign in with ChatGPT"],
      ["agent-auth login openai --with-api-key", "OpenAI — API key"],
      ["agent-auth login anthropic --with-api-key", "Anthropic — API key"],
      ["agent-auth login google --with-api-key", "Google Gemini API — API key"],
      ["agent-auth login demo ", "Demo"],
      ["agent-auth login acme ", "Acme Corp — sign in"]
    ]
    for (const [command, label] of expected) {
      expect(r.stderr.split("\n").find((l) => l.includes(command))).toContain(label)
    }
  })

  it("`use <provider>` without an account offers the stored accounts in the same menu", async () => {
    const dir = await home()
    for (const account of ["first", "second"]) {
      const r = await run(["login", "openai", "--with-api-key", "--account", account], cliEnv(dir), `sk-${account}-0123456789abcdefghij`)
      expect(r.code).toBe(0)
    }
    const pty = onTerminal(["use", "openai"], cliEnv(dir))
    await pty.waitFor("Esc to cancel")
    expect(pty.output()).toContain("Default account for OpenAI:")
    pty.type("2\r")
    expect(await pty.exit).toBe(0)
    expect(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")).defaults).toEqual({ openai: "second" })
  })
})
