/**
 * What `agent-auth login` tells a person (its human output, on stderr), against a real
 * authorization server (panva's oidc-provider, in-process, test/support/oidcProvider.ts),
 * through the built CLI:
 * - a device login prints the server's `verification_uri_complete` (the address that
 *   carries the code), and that address works: opening it, with no code typed, completes
 *   the login;
 * - the README's OIDC example (scopes openid and offline_access, nothing else) gets no
 *   refresh token from this server, and the login says so at once, with what to change.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { ChildProcessWithoutNullStreams } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Browser } from "./support/browser.js"
import { cliEnv, finish, start, tempHome } from "./support/cli.js"
import { CLIENT_ID, type OidcServer, startOidcProvider } from "./support/oidcProvider.js"

const PROVIDER = "op"
const typed = { login: "alice", password: "any-password" }

let server: OidcServer
const homes: Array<string> = []

beforeAll(async () => {
  server = await startOidcProvider()
})
afterAll(async () => {
  await server?.close()
  for (const home of homes) fs.rmSync(home, { recursive: true, force: true })
})

const homeWith = (entry: Record<string, unknown>) => {
  const home = tempHome()
  homes.push(home)
  fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { [PROVIDER]: entry } }))
  return home
}

/** Resolves with stderr so far once it matches `pattern` (rejects if the process ends first). */
const stderrUntil = (child: ChildProcessWithoutNullStreams, pattern: RegExp): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = ""
    const onData = (d: Buffer) => {
      text += d.toString()
      if (pattern.test(text)) {
        child.stderr.off("data", onData)
        resolve(text)
      }
    }
    child.stderr.on("data", onData)
    child.once("close", (code) => reject(new Error(`agent-auth exited (${code}) before printing ${pattern}; stderr:\n${text}`)))
  })

describe("agent-auth login's human output, against oidc-provider", () => {
  it("device login: prints the address that carries the code, and opening it alone completes the login", async () => {
    const home = homeWith({
      kind: "oidc",
      issuer: server.issuer,
      clientId: CLIENT_ID,
      scopes: ["openid", "offline_access", "email"],
      authorizeParams: { prompt: "consent" }
    })
    const child = start(["login", PROVIDER, "--device"], cliEnv(home))
    const done = finish(child)
    // The whole device prompt, up to its last line.
    const shown = await stderrUntil(child, /The code expires in \d+ min/).catch((e: unknown) => {
      child.kill("SIGKILL")
      throw e
    })
    if (!shown.includes("which carries the code")) child.kill("SIGKILL")
    const code = /and enter the code\n\n {2}(\S+)\n/.exec(shown)?.[1]
    const complete = /which carries the code:\n\n {2}(\S+)\n/.exec(shown)?.[1]
    expect(code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/)
    // The server's verification_uri_complete: its device page with the code in it.
    expect(complete).toBe(`${server.issuer}/device?user_code=${code}`)
    // A person opens that address and signs in, typing no code.
    const visit = await new Browser().navigate(complete!, { fields: typed })
    expect(visit.status, visit.trail.join("\n")).toBe(200)
    expect(visit.body).toContain("Sign-in Success")
    const result = await done
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toContain("Logged in to")
  }, 60_000)

  it("the README's OIDC example: no refresh token from this server, and the login says so, naming what to add", async () => {
    // As in README.md, "Adding an OIDC provider" (the issuer and client made real).
    const home = homeWith({
      kind: "oidc",
      issuer: server.issuer,
      clientId: CLIENT_ID,
      scopes: ["openid", "offline_access"],
      apiBaseUrl: "https://llm.example.test/v1"
    })
    const child = start(["login", PROVIDER, "--no-browser"], cliEnv(home))
    const done = finish(child)
    const shown = await stderrUntil(child, /Open this URL[^\n]*\n\n {2}\S+\n/)
    const url = /Open this URL[^\n]*\n\n {2}(\S+)\n/.exec(shown)![1]!
    const visit = await new Browser().navigate(url, { fields: typed })
    expect(visit.status, visit.trail.join("\n")).toBe(200)
    const result = await done
    expect(result.code, result.stderr).toBe(0)
    const stored = JSON.parse(fs.readFileSync(path.join(home, "credentials.json"), "utf8")) as {
      credentials: Array<{ tokens: { refreshToken?: string } }>
    }
    expect(stored.credentials[0]!.tokens.refreshToken).toBeUndefined()
    // Nothing promises a refresh that cannot happen.
    expect(result.stderr).not.toContain("refreshed when due")
    expect(result.stderr).toMatch(
      new RegExp(
        `${PROVIDER} gave no refresh token, so this login ends when the access token expires \\(.+\\)\\. ` +
          `It asked for the scope "offline_access"; some servers give a refresh token only with a consent prompt: ` +
          `add "authorizeParams": \\{ "prompt": "consent" \\} to providers\\.${PROVIDER} in config\\.json, then log in again\\.`
      )
    )
  }, 60_000)
})
