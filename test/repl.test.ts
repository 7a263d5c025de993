/**
 * The CLI's commands as a library (issue 19): packages/cli/examples/repl.ts, a runtime's
 * REPL, runs `/auth status`, `/auth login demo`, `/auth token demo` and `/auth logout demo`
 * inside its own process through `run` from @agent-auth/cli, and passes other lines on.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { cliEnv } from "./support/cli.js"
import { freePort, issuedTokens, useDemoPort } from "./support/demo.js"

const runner = fileURLToPath(new URL("../packages/cli/examples/run.mjs", import.meta.url))

/** Runs the example REPL with `lines` on its stdin (then closed); its output and exit code. */
const repl = (lines: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve, reject) => {
    const child = spawn(process.execPath, [runner], { env, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.once("error", reject)
    child.once("close", (code) => resolve({ stdout, stderr, code }))
    child.stdin.end(lines.map((l) => `${l}\n`).join(""))
  })

describe("the example REPL (packages/cli/examples/repl.ts)", () => {
  it("/auth status, login demo, token, logout run inside the REPL's process; other lines go to the agent", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-repl-"))
    try {
      useDemoPort(home, await freePort())
      const result = await repl(
        ["/auth status", "/auth login demo", "/auth status demo", "hello, agent", "/auth token demo", "/auth logout demo", "/auth status demo"],
        cliEnv(home)
      )
      expect(result.code, result.stderr).toBe(0)
      // One REPL process ran every command: it announced itself once, and each command's exit
      // code came back to it (a child process would have ended the line with its own exit).
      expect(result.stdout.match(/^repl \d+ ready$/gm)).toHaveLength(1)
      expect(result.stdout.match(/^\[\/auth \w+ exited \d+\]$/gm)).toEqual([
        "[/auth status exited 1]",
        "[/auth login exited 0]",
        "[/auth status exited 0]",
        "[/auth token exited 0]",
        "[/auth logout exited 0]",
        "[/auth status exited 1]"
      ])
      expect(result.stdout).toContain("agent: hello, agent")
      expect(result.stderr).toContain("Logged in to Demo")
      // `/auth token demo` printed the access token the demo server issued, on stdout.
      const [token] = issuedTokens(home).access
      expect(token).toBeDefined()
      expect(result.stdout.split("\n")).toContain(token)
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  }, 120_000)
})
