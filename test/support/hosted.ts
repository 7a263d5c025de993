/**
 * The hosted example service (packages/server/examples) as child processes, the way it is
 * deployed: built once with its own script, each replica started with its own environment,
 * ready when it prints `listening on URL`.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { cliEnv, tempHome } from "./cli.js"

const runScript = fileURLToPath(new URL("../../packages/server/examples/run.mjs", import.meta.url))

/** Builds the example (the same build `pnpm example:hosted` runs); the bundle's path. */
export const buildHosted = (): string => execFileSync(process.execPath, [runScript, "--build"], { encoding: "utf8" }).trim()

export interface Replica {
  readonly url: string
  readonly home: string
  readonly child: ChildProcessWithoutNullStreams
  /** Everything it printed so far (for failure messages). */
  readonly output: () => string
  readonly stop: () => Promise<void>
}

/** An encryption key, as `openssl rand -base64 32` makes one. */
export const newKey = (): string => crypto.randomBytes(32).toString("base64")

/** A home whose config.json names one OIDC provider `acme`. */
export const homeWith = (provider: Record<string, unknown>): string => {
  const home = tempHome()
  fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { acme: { kind: "oidc", ...provider } } }))
  return home
}

/** Starts a replica on a free port; fails with its output when it exits or stays silent for `ms`. */
export const startHosted = (bundle: string, home: string, env: Record<string, string>, ms = 20_000): Promise<Replica> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundle], { env: cliEnv(home, { PORT: "0", ...env }), stdio: ["pipe", "pipe", "pipe"] })
    let output = ""
    const stop = () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done()
        child.once("close", () => done())
        child.kill("SIGTERM")
      })
    const timer = setTimeout(() => {
      void stop()
      reject(new Error(`the hosted example did not start within ${ms} ms:\n${output}`))
    }, ms)
    const onData = (d: Buffer) => {
      output += d
      const m = /listening on (http:\/\/\S+)/.exec(output)
      if (m !== null) {
        clearTimeout(timer)
        resolve({ url: m[1]!, home, child, output: () => output, stop })
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", (d) => (output += d))
    child.on("close", (code) => {
      clearTimeout(timer)
      reject(new Error(`the hosted example exited (${code}):\n${output}`))
    })
  })
