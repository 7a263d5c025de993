/** Running the built `agent-auth` bundle as a child process, the way a user does. */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const bundle = fileURLToPath(new URL("../../packages/cli/dist/agent-auth.mjs", import.meta.url))

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** An empty AGENT_AUTH_HOME, removed by the caller's cleanup. */
export const tempHome = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-test-"))

/**
 * A clean environment: nothing of the developer's own keys or home leaks into a test. The
 * file store unless a test says otherwise (these tests read credentials.json; the default
 * store, `auto`, has tests of its own in test/keyring.test.ts).
 */
export const cliEnv = (home: string, extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? "",
  HOME: home,
  AGENT_AUTH_HOME: home,
  AGENT_AUTH_STORE: "file",
  NO_COLOR: "1",
  ...extra
})

export const start = (args: ReadonlyArray<string>, env: Record<string, string>): ChildProcessWithoutNullStreams =>
  spawn(process.execPath, [bundle, ...args], { env, stdio: ["pipe", "pipe", "pipe"] })

/** Runs to the end; `input` is written to stdin (then closed), else stdin is closed at once. */
export const run = (args: ReadonlyArray<string>, env: Record<string, string>, input?: string): Promise<CliResult> =>
  finish(start(args, env), input)

export const finish = (child: ChildProcessWithoutNullStreams, input?: string): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
    if (input !== undefined) child.stdin.write(input)
    child.stdin.end()
  })

/** Resolves with the first JSON line on stdout whose `event` is `name`. */
export const nextEvent = (child: ChildProcessWithoutNullStreams, name: string): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    let buffer = ""
    const onData = (d: Buffer) => {
      buffer += d.toString()
      let nl: number
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>
          if (parsed.event === name) {
            child.stdout.off("data", onData)
            return resolve(parsed)
          }
        } catch {
          // not JSON: ignore
        }
      }
    }
    child.stdout.on("data", onData)
    child.once("close", (code) => reject(new Error(`agent-auth exited (${code}) before the ${name} event`)))
  })

/** What a browser does with the authorization URL: follow redirects until the loopback callback answers. */
export const followAuthorization = async (url: string): Promise<Response> => {
  let next = url
  for (let i = 0; i < 5; i++) {
    const response = await fetch(next, { redirect: "manual" })
    const location = response.headers.get("location")
    if (response.status >= 300 && response.status < 400 && location !== null) {
      next = new URL(location, next).toString()
      continue
    }
    return response
  }
  throw new Error("too many redirects")
}
