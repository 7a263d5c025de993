/**
 * The embedded demo server and two agent-auth processes at once, black-box through the
 * bundle: each process is the real CLI, in a temp home whose config.json points the demo
 * issuer at a port of this test's own (never 14555, shared by the whole machine).
 * - another home's demo server on the port: the command fails at once, naming it;
 * - the same home's: shared, and when its process ends mid-login, the login goes on
 *   against the same state served by the sharer;
 * - something that is not a demo server: the command reports what answers there.
 */
import { describe, expect, it } from "@effect/vitest"
import type { ChildProcessWithoutNullStreams } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { cliEnv, type CliResult, finish, followAuthorization, nextEvent, start, tempHome } from "./support/cli.js"
import { demoStatePath, freePort, runWithin, useDemoPort } from "./support/demo.js"

const homes: Array<string> = []
const children: Array<ChildProcessWithoutNullStreams> = []

const homeOn = (port: number): string => {
  const home = tempHome()
  homes.push(home)
  useDemoPort(home, port)
  return home
}

/** A `login demo` that waits for a browser, holding the demo server while it does; resolves with its authorization URL. */
const waitingLogin = async (home: string) => {
  const child = start(["login", "demo", "--no-browser", "--json", "--timeout", "60s"], cliEnv(home))
  children.push(child)
  const done = finish(child)
  const url = String((await nextEvent(child, "authorization_url")).url)
  return { child, done, url }
}

const stop = async (login: { child: ChildProcessWithoutNullStreams; done: Promise<CliResult> }) => {
  login.child.kill("SIGTERM")
  return login.done
}

const cleanup = () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true })
}

describe("the demo server and two agent-auth processes", () => {
  it("another home's demo server on the port: fails at once with one line naming it and what to do, exit 3", async () => {
    try {
      const port = await freePort()
      const first = homeOn(port)
      const second = homeOn(port)
      const holder = await waitingLogin(first)
      for (const args of [["token", "demo"], ["login", "demo", "--no-browser", "--timeout", "60s"]]) {
        const began = Date.now()
        const r = await runWithin(args, cliEnv(second), 20_000)
        const took = Date.now() - began
        expect(r.code, r.stderr).toBe(3)
        expect(r.stderr.trim()).toBe(
          `Error: Port ${port} on 127.0.0.1 is held by the demo server of another agent-auth home ` +
            `(${fs.realpathSync(first)}/demo-server.json). Wait for the agent-auth command using that home to finish, ` +
            `or point providers.demo.issuer in ${second}/config.json at another loopback port, such as "http://127.0.0.1:${port + 1}".`
        )
        // Failed fast: not the login's 60 s timeout (a wide margin for a loaded machine).
        expect(took).toBeLessThan(15_000)
      }
      // Nothing of the second home went into the first home's demo state, nor a login into its own.
      expect(fs.existsSync(path.join(second, "credentials.json"))).toBe(false)
      expect(fs.existsSync(demoStatePath(second))).toBe(false)
      // With --json: the same line, and the error as JSON on stdout.
      const json = await runWithin(["token", "demo", "--json"], cliEnv(second), 20_000)
      expect(json.code).toBe(3)
      expect(JSON.parse(json.stdout.trim().split("\n").at(-1)!)).toMatchObject({ error: { tag: "PortUnavailable", exitCode: 3 } })
      // The holder was not disturbed: its login still completes.
      const page = await followAuthorization(holder.url)
      expect(page.status).toBe(200)
      expect((await holder.done).code).toBe(0)
    } finally {
      cleanup()
    }
  }, 90_000)

  it("the same home's: shared; when its process ends mid-login, the sharer serves the same state and the login completes", async () => {
    try {
      const port = await freePort()
      const home = homeOn(port)
      const owner = await waitingLogin(home)
      const sharer = await waitingLogin(home)
      // The owner goes away before the sharer's browser comes back.
      const ended = await stop(owner)
      expect(ended.code === 0 || ended.signal !== null || ended.code === 130 || ended.code === 143, JSON.stringify(ended)).toBe(true)
      // The browser arrives after the owner left: someone must still answer on the port.
      // Retried while nothing answers; the last failure is in the assertion's message.
      let page: Response | undefined
      let lastFailure: unknown
      for (let i = 0; i < 40 && page === undefined; i++) {
        page = await followAuthorization(sharer.url).catch((e: unknown) => void (lastFailure = e))
        if (page === undefined) await new Promise((r) => setTimeout(r, 250))
      }
      expect(page?.status, String(lastFailure)).toBe(200)
      const r = await sharer.done
      expect(r.code, r.stderr).toBe(0)
      // The login is usable by later commands: its tokens are in this home's demo state.
      const token = await runWithin(["token", "demo"], cliEnv(home), 20_000)
      expect(token.code, token.stderr).toBe(0)
      expect(token.stdout.trim().length).toBeGreaterThan(10)
    } finally {
      cleanup()
    }
  }, 90_000)

  it("something that is not a demo server on the port: the command says what answered there, not another home", async () => {
    const server = http.createServer((_, res) => {
      res.writeHead(404, { "content-type": "text/plain" })
      res.end("not here")
    })
    try {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const port = (server.address() as { port: number }).port
      const home = homeOn(port)
      const r = await runWithin(["login", "demo", "--no-browser", "--timeout", "60s"], cliEnv(home), 30_000)
      expect(r.code, r.stderr).toBe(3)
      expect(r.stderr).toContain(`http://127.0.0.1:${port}`)
      expect(r.stderr).not.toContain("another agent-auth home")
    } finally {
      server.close()
      cleanup()
    }
  }, 60_000)
})
