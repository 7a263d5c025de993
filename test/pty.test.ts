/**
 * The CLI under a real pseudo-terminal, as a person at a keyboard meets it: util-linux
 * `script` runs the bundle on a pty and copies the keys written to its stdin into it, so
 * Ctrl-C, Ctrl-D and Esc arrive as a terminal sends them (raw bytes to a program in raw
 * mode, a signal through the line discipline otherwise).
 */
import { describe, expect, it } from "@effect/vitest"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { bundle, cliEnv, run, tempHome } from "./support/cli.js"
import { serveForFile } from "./support/fakeServer.js"
import type { FakeAuthServer } from "@agent-auth/testing"

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile({ accessTokenTtl: "1 hour" }, (server) => (fake = server))

const homeWithAcme = () => {
  const home = tempHome()
  fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { acme: { kind: "oidc", issuer: fake.issuer, clientId: fake.clientId } } }))
  return home
}

/** Terminal output without escape sequences and carriage returns. */
const plain = (s: string) => s.replace(/\u001b\[[0-9;?]*[A-Za-z]|\u001b\][^\u0007\u001b]*(\u0007|\u001b\\)/g, "").replace(/\r/g, "")

interface Pty {
  readonly child: ChildProcessWithoutNullStreams
  readonly output: () => string
  /** Resolves once the output (escapes stripped) matches. */
  readonly waitFor: (pattern: RegExp) => Promise<RegExpExecArray>
  readonly exit: Promise<number | null>
  readonly press: (keys: string) => void
}

const onPty = (args: ReadonlyArray<string>, home: string): Pty => {
  const command = [process.execPath, bundle, ...args].map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(" ")
  const child = spawn("script", ["-qfec", command, "/dev/null"], {
    env: { PATH: process.env.PATH ?? "", HOME: home, AGENT_AUTH_HOME: home, TERM: "xterm", NO_COLOR: "1", BROWSER: "false" },
    stdio: ["pipe", "pipe", "pipe"]
  })
  let out = ""
  const waiters: Array<() => void> = []
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString("utf8")
    for (const w of waiters.splice(0)) w()
  })
  const exit = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)))
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(plain(out))
        if (m !== null) return resolve(m)
        waiters.push(check)
      }
      void exit.then(() => {
        const m = pattern.exec(plain(out))
        return m === null ? reject(new Error(`exited before ${pattern}; output:\n${plain(out)}`)) : resolve(m)
      })
      check()
    })
  return { child, output: () => plain(out), waitFor, exit, press: (keys) => child.stdin.write(keys) }
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** Starts `login acme --no-browser` on a pty and waits for its paste prompt; returns the loopback port. */
const atPastePrompt = async (pty: Pty): Promise<number> => {
  const redirect = await pty.waitFor(/redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A(\d+)/)
  await pty.waitFor(/Or paste the redirect URL/)
  const port = Number(redirect[1])
  expect(await listening(port)).toBe(true)
  return port
}

describe("agent-auth on a terminal", () => {
  it("the first Ctrl-C at the paste prompt ends the login: exit 130, one line, the port closed", async () => {
    const home = homeWithAcme()
    const pty = onPty(["login", "acme", "--no-browser"], home)
    const port = await atPastePrompt(pty)
    pty.press("\u0003")
    expect(await pty.exit).toBe(130)
    const after = pty.output().split("Or paste the redirect URL")[1]!
    expect(after).toContain("Cancelled")
    expect(after).not.toContain("Error")
    expect(await listening(port)).toBe(false)
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
  })

  it("Ctrl-D at the paste prompt says so in one line and keeps waiting for the browser", async () => {
    const home = homeWithAcme()
    const pty = onPty(["login", "acme", "--no-browser"], home)
    const port = await atPastePrompt(pty)
    pty.press("\u0004")
    await pty.waitFor(/Nothing pasted \(stdin closed\); still waiting for the browser\. Ctrl-C cancels\./)
    // Still a login: its port still answers.
    expect(await listening(port)).toBe(true)
    pty.press("\u0003")
    expect(await pty.exit).toBe(130)
    expect(pty.output().match(/Nothing pasted/g)).toHaveLength(1)
    expect(await listening(port)).toBe(false)
  })

  it("the menu: Esc cancels with one line (no \"Error\"), exit 130", async () => {
    const home = homeWithAcme()
    const pty = onPty(["login"], home)
    await pty.waitFor(/Log in to which provider\?/)
    await pty.waitFor(/Esc to cancel/)
    pty.press("\u001b")
    expect(await pty.exit).toBe(130)
    // The menu draws itself once more (closed), then the one line.
    const after = pty.output().split("Esc to cancel")[1]!
    expect(after.trim().split("\n").at(-1)).toBe("Login to a provider was cancelled; nothing was stored.")
    expect(after.match(/cancelled/g)).toHaveLength(1)
    expect(after).not.toContain("Error")
  })

  it("the menu: Ctrl-D cancels the same way", async () => {
    const pty = onPty(["login"], homeWithAcme())
    await pty.waitFor(/Esc to cancel/)
    pty.press("\u0004")
    expect(await pty.exit).toBe(130)
    expect(pty.output()).toContain("Login to a provider was cancelled; nothing was stored.")
  })

  it("the menu: moving down and Enter chooses; the demo signs in by itself", async () => {
    const home = homeWithAcme()
    const pty = onPty(["login"], home)
    const menu = await pty.waitFor(/Esc to cancel/)
    expect(menu.input).toContain("Demo")
    // The line number of the demo's sign-in, typed as a digit.
    const lines = pty.output().split("\n").filter((l) => /^\s*[❯ ]\s\d\./.test(l))
    const demoLine = lines.findIndex((l) => l.includes("Demo") && l.includes("sign in"))
    expect(demoLine).toBeGreaterThanOrEqual(0)
    pty.press(String(demoLine + 1))
    pty.press("\r")
    await pty.waitFor(/next time: agent-auth login demo/)
    expect(await pty.exit).toBe(0)
    expect(pty.output()).toContain("Logged in to Demo")
  })

  it("logout --all asks first on a terminal: no keeps everything (exit 130), yes logs out", async () => {
    const home = tempHome()
    const stored = await run(["login", "anthropic", "--with-api-key"], cliEnv(home), "sk-ant-pty-0123456789abcdef")
    expect(stored.code, stored.stderr).toBe(0)
    const before = fs.readFileSync(path.join(home, "credentials.json"), "utf8")

    const no = onPty(["logout", "--all"], home)
    await no.waitFor(/Log out of 1 login: anthropic \(default\)\? \[y\/N\]/)
    no.press("n\r")
    expect(await no.exit).toBe(130)
    expect(no.output()).toContain("Logging out of everything was cancelled; nothing was changed.")
    expect(fs.readFileSync(path.join(home, "credentials.json"), "utf8")).toBe(before)

    const yes = onPty(["logout", "--all"], home)
    await yes.waitFor(/\[y\/N\]/)
    yes.press("y\r")
    expect(await yes.exit).toBe(0)
    expect(yes.output()).toContain("Deleted anthropic (default)")
    expect(fs.readFileSync(path.join(home, "credentials.json"), "utf8")).not.toContain("anthropic")
  })
})
