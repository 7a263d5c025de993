/**
 * `--verbose` (or `AGENT_AUTH_LOG=debug`): every protocol step traced on stderr — endpoint,
 * method, HTTP status, duration, grant type, the rule that accepted or refused — and no
 * secret. Canary secrets (an environment key, a config.json key, a stored key, a stored
 * login's access, refresh and ID tokens) and every real token the server issued are
 * looked for in everything every command printed; only `token`'s stdout may hold one.
 */
import { FakeAuthServer } from "@agent-auth/testing"
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { type CliResult, cliEnv, finish, followAuthorization, nextEvent, run, start, tempHome } from "./support/cli.js"
import { serveForFile } from "./support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile({}, (server) => (fake = server))

const CANARY = {
  env: "sk-CANARY-environment-4b1d9e7f0a2c",
  config: "sk-ant-CANARY-config-json-8e3f1a6c",
  stored: "sk-CANARY-stored-key-5c7a2e9b1d3f",
  access: "at-CANARY-stored-access-token-6f2e8a",
  refresh: "rt-CANARY-stored-refresh-token-1a9c4e",
  id: "eyJhbGciOiJSUzI1NiJ9.eyJDQU5BUlkiOnRydWV9.CANARY-id-token-signature"
}

const credentialsPath = (home: string) => path.join(home, "credentials.json")
const storedSecrets = (home: string): Array<string> =>
  [...fs.readFileSync(credentialsPath(home), "utf8").matchAll(/"(?:accessToken|refreshToken|idToken|key)":\s*"([^"]+)"/g)].map((m) => m[1]!)

describe("--verbose", () => {
  it("traces each protocol step with no secret in any output (canary tokens)", async () => {
    const home = tempHome()
    fs.writeFileSync(
      path.join(home, "config.json"),
      JSON.stringify({
        apiKeys: { anthropic: CANARY.config },
        providers: { acme: { kind: "oidc", issuer: fake.issuer, clientId: fake.clientId } }
      })
    )
    const env = cliEnv(home, { OPENAI_API_KEY: CANARY.env })
    const runs: Array<{ args: ReadonlyArray<string>; r: CliResult }> = []
    const cli = async (args: ReadonlyArray<string>, input?: string, extraEnv: Record<string, string> = {}) => {
      const r = await run([...args, "--verbose"], { ...env, ...extraEnv }, input)
      runs.push({ args, r })
      return r
    }

    // A browser login (the flow's every step), then a stored key.
    const child = start(["login", "acme", "--no-browser", "--json", "--verbose"], env)
    const done = finish(child)
    await followAuthorization(String((await nextEvent(child, "authorization_url")).url))
    const login = await done
    runs.push({ args: ["login", "acme"], r: login })
    expect(login.code, login.stderr).toBe(0)
    expect((await cli(["login", "openai", "--with-api-key", "--account", "ci"], CANARY.stored)).code).toBe(0)

    // A second acme login with canary tokens, expired: its refresh will be refused.
    const file = JSON.parse(fs.readFileSync(credentialsPath(home), "utf8"))
    const real = file.credentials.find((c: { provider: string }) => c.provider === "acme")
    file.credentials.push({
      ...real,
      account: "canary",
      tokens: { ...real.tokens, accessToken: CANARY.access, refreshToken: CANARY.refresh, idToken: CANARY.id, expiresAt: "2020-01-01T00:00:00.000Z" }
    })
    fs.writeFileSync(credentialsPath(home), JSON.stringify(file), { mode: 0o600 })
    const realSecrets = storedSecrets(home).filter((s) => !Object.values(CANARY).includes(s))
    expect(realSecrets.length).toBeGreaterThanOrEqual(3) // the real login's access, refresh and ID tokens

    expect((await cli(["status"])).code).toBe(0)
    expect((await cli(["providers"])).code).toBe(0)
    const acmeToken = await cli(["token", "acme"])
    expect(acmeToken.code).toBe(0)
    const openaiToken = await cli(["token", "openai"])
    expect(openaiToken.stdout).toBe(`${CANARY.env}\n`)
    expect((await cli(["token", "anthropic", "--json"])).stdout).toContain(CANARY.config)
    expect((await cli(["refresh", "acme"])).code).toBe(0)
    const refused = await cli(["refresh", "acme", "--account", "canary"])
    expect(refused.code).toBe(1)
    expect((await cli(["use", "acme", "canary"])).code).toBe(0)
    expect((await cli(["token", "acme"])).code).toBe(1) // the default is now the dead canary login
    expect((await cli(["logout", "--all"])).code).toBe(0)
    const allSecrets = [...Object.values(CANARY), ...realSecrets]

    // No secret anywhere, except the stdout of the `token` runs that asked for one.
    for (const { args, r } of runs) {
      const tokenRun = args[0] === "token"
      for (const secret of allSecrets) {
        expect(r.stderr, `${args.join(" ")} stderr`).not.toContain(secret)
        if (!tokenRun) expect(r.stdout, `${args.join(" ")} stdout`).not.toContain(secret)
      }
      expect(r.stderr).not.toMatch(/[?&]code=/) // the authorization code is never shown
    }
    expect(acmeToken.stdout.trim()).toBe(realSecrets[0])

    // The traces a bug report needs.
    const log = runs.map(({ r }) => r.stderr).join("\n")
    const tokenEndpoint = `${fake.issuer}/token`
    expect(log).toContain(`debug discovery accepted`)
    expect(log).toMatch(/debug authorization request .*pkce=S256/)
    expect(log).toMatch(/debug callback accepted .*rules="state,iss \(RFC 9207\)"/)
    expect(log).toMatch(new RegExp(`debug POST ${tokenEndpoint} .*grant_type=authorization_code`))
    expect(log).toMatch(/grant_type=authorization_code.*status=200|status=200.*grant_type=authorization_code/)
    expect(log).toMatch(/duration_ms=\d+/)
    expect(log).toMatch(/debug ID token accepted .*rules=alg,signature,iss,aud/)
    expect(log).toMatch(/debug refresh due .*rule=forced/)
    expect(log).toMatch(/grant_type=refresh_token/)
    expect(refused.stderr).toMatch(/status=400/)
    expect(refused.stderr).toMatch(/error=invalid_grant/)
    expect(refused.stderr).toMatch(/debug refresh refused: a new sign-in is needed .*rule=refusal/)
    expect(log).toMatch(/debug credential chosen .*source=Env/)
    expect(log).toMatch(/token_type_hint=refresh_token/) // the revocation at logout
    expect(log).toMatch(/debug logout .*revocation=Revoked/)
  }, 120_000)

  it("AGENT_AUTH_LOG=debug traces the same; without either, no debug line", async () => {
    const home = tempHome()
    const env = cliEnv(home, { ANTHROPIC_API_KEY: CANARY.env })
    const quiet = await run(["token", "anthropic"], env)
    expect(quiet.stderr).toBe("")
    const traced = await run(["token", "anthropic"], { ...env, AGENT_AUTH_LOG: "debug" })
    expect(traced.stdout).toBe(`${CANARY.env}\n`)
    expect(traced.stderr).toMatch(/debug credential chosen .*variable=ANTHROPIC_API_KEY/)
    expect(traced.stderr).not.toContain(CANARY.env)
  })
})
