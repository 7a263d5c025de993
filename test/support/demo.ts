/** Helpers for running the CLI's embedded `demo` provider in tests. */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { spawn } from "node:child_process"
import { bundle, type CliResult, finish } from "./cli.js"

/**
 * A port nobody listens on right now. The demo's default port (14555) is shared by every
 * process on the machine; tests point the demo issuer at a port of their own instead
 * (config.json), so they never meet another suite's demo server.
 */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

/** Writes `home/config.json` so the demo provider (and its embedded server) use `port`. */
export const useDemoPort = (home: string, port: number): void => {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 })
  fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { demo: { issuer: `http://127.0.0.1:${port}` } } }))
}

/**
 * `run` (stdin closed at once), but in a process group of its own that is killed if it
 * outlives `ms`, and in any case when it ends: a hung command fails its test, and neither
 * it nor a child it started (the tour's steps) outlives the test.
 */
export const runWithin = (args: ReadonlyArray<string>, env: Record<string, string>, ms = 20_000): Promise<CliResult> => {
  const child = spawn(process.execPath, [bundle, ...args], { env, stdio: ["pipe", "pipe", "pipe"], detached: true })
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  const timer = setTimeout(killGroup, ms)
  return finish(child).finally(() => {
    clearTimeout(timer)
    killGroup()
  })
}

export const demoStatePath = (home: string): string => path.join(home, "demo-server.json")

/**
 * Every access and refresh token the demo server of `home` has issued, oldest first, read
 * from its saved state (entries of `[token, record]`; the demo's access tokens are opaque,
 * so the key is the token). It outlives logout, which empties credentials.json.
 */
export const issuedTokens = (home: string): { readonly access: Array<string>; readonly refresh: Array<string> } => {
  const state = JSON.parse(fs.readFileSync(demoStatePath(home), "utf8")) as {
    access: Array<[string, { iat: number }]>
    refresh: Array<[string, { exp: number }]>
  }
  // The saved maps have no order; issue time gives one (a refresh token's expiry is its issue time plus a fixed lifetime).
  return {
    access: [...state.access].sort((a, b) => a[1].iat - b[1].iat).map(([t]) => t),
    refresh: [...state.refresh].sort((a, b) => a[1].exp - b[1].exp).map(([t]) => t)
  }
}
