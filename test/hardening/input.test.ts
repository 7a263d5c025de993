/**
 * Hardening, input: a bad config.json is refused by every command with `ConfigInvalid`
 * naming the field (exit 2), before anything is read, written or fetched.
 */
import { afterAll, expect } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { cliEnv, run, tempHome } from "../support/cli.js"
import { area } from "./support/table.js"

const homes: Array<string> = []
afterAll(() => homes.forEach((h) => fs.rmSync(h, { recursive: true, force: true })))

const provider = { kind: "oidc", issuer: "https://login.acme.example", clientId: "agent-cli" }

/** Runs `args` with `config` as config.json; expects exit 2 naming `field`, and nothing created. */
const refused = async (config: string | object, field: string, args: ReadonlyArray<string> = ["status"]) => {
  const home = tempHome()
  homes.push(home)
  fs.writeFileSync(path.join(home, "config.json"), typeof config === "string" ? config : JSON.stringify(config))
  const r = await run(args, cliEnv(home))
  expect(r.stderr).toContain("Invalid configuration")
  expect(r.stderr).toContain(`at ${field}:`)
  expect(r.code).toBe(2)
  expect(r.stdout).toBe("")
  // Refused before anything was done: no store, no lock.
  expect(fs.readdirSync(home).sort()).toEqual(["config.json"])
  return r
}

const input = area("input", import.meta.url)

input.promise("unknown field in a provider (a typo is not ignored)", "refused", async (t) => {
  await refused({ providers: { acme: { ...provider, colour: "red" } } }, "providers.acme.colour")
  t.note("exit 2, names providers.acme.colour")
})

input.promise("unknown top-level field", "refused", async (t) => {
  await refused({ stroe: "file" }, "stroe", ["token", "openai"])
  t.note("exit 2 on `token`, names stroe")
})

input.promise("wrong type: scopes as a string", "refused", async (t) => {
  await refused({ providers: { acme: { ...provider, scopes: "openid" } } }, "providers.acme.scopes")
  t.note("exit 2, names providers.acme.scopes")
})

input.promise("wrong type: redirect port out of range", "refused", async (t) => {
  await refused({ providers: { acme: { ...provider, redirect: { ports: [70000] } } } }, "providers.acme.redirect.ports.0", [
    "login",
    "acme",
    "--no-browser"
  ])
  t.note("exit 2 on `login`, names providers.acme.redirect.ports.0")
})

input.promise("wrong type: refreshSkewSeconds negative", "refused", async (t) => {
  await refused({ refreshSkewSeconds: -5 }, "refreshSkewSeconds")
  t.note("exit 2, names refreshSkewSeconds")
})

input.promise("http issuer that is not loopback", "refused", async (t) => {
  const r = await refused({ providers: { acme: { ...provider, issuer: "http://login.acme.example" } } }, "providers.acme.issuer")
  expect(r.stderr).toContain("https")
  t.note("exit 2, names providers.acme.issuer, asks for https")
})

input.promise("http issuer posing as loopback (userinfo, lookalike host)", "refused", async (t) => {
  await refused({ providers: { acme: { ...provider, issuer: "http://127.0.0.1@evil.example" } } }, "providers.acme.issuer")
  await refused({ providers: { acme: { ...provider, issuer: "http://127.0.0.1.evil.example" } } }, "providers.acme.issuer")
  await refused({ providers: { acme: { ...provider, issuer: "http://localhost.evil.example:80" } } }, "providers.acme.issuer")
  t.note("127.0.0.1@evil, 127.0.0.1.evil, localhost.evil: exit 2 each")
})

input.promise("http token endpoint override that is not loopback", "refused", async (t) => {
  await refused(
    { providers: { openai: { endpoints: { token: "http://10.0.0.1/oauth/token" } } } },
    "providers.openai.endpoints.token"
  )
  t.note("exit 2, names providers.openai.endpoints.token")
})

input.promise("provider id with path characters", "refused", async (t) => {
  await refused({ providers: { "../evil": provider } }, "providers.../evil")
  await refused({ apiKeys: { "a/b": "sk-test-not-a-key" } }, "apiKeys.a/b")
  t.note("providers.../evil and apiKeys.a/b: exit 2 each")
})

input.promise("config.json that is not JSON: the API key in it is not echoed", "refused", async (t) => {
  // A key pasted without its quotes. V8's parse error quotes ~10 characters around the fault,
  // here "sk-canary-": less than a masked key shows, and no 12-character piece of it.
  const secret = "sk-canary-config-7f3a9c1e5b2d4a6f"
  const r = await refused(`{ "apiKeys": { "openai": ${secret} } }`, "(root)")
  expect(r.stderr).not.toContain(secret)
  expect(r.stderr).not.toContain(secret.slice(0, 12))
  t.note("exit 2, names (root); at most the key's first 10 characters in stderr (V8's excerpt)")
})
