/**
 * Generated inputs, run in-process: command lines through the CLI's parser (the command
 * tree main.ts runs), and config.json documents through the config loader and the provider
 * registry. Every outcome must be a plan or a typed error whose exit code is one of
 * 0, 1, 2, 3, 4, 130 — never a throw, never a defect (which the CLI reports as exit 70).
 * fast-check is effect's own (effect/FastCheck, pinned with effect).
 */
import { AuthConfig, ProviderRegistry } from "@agent-auth/core"
import { FileSystem, HttpClient, HttpClientError } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Either, Exit, FastCheck as fc, Layer } from "effect"
import { builtinProviderNames, root } from "../src/cli.js"
import { nodes } from "../src/internal/completions.js"
import { demoProvider } from "../src/internal/demoProvider.js"
import { fastArgs } from "../src/internal/fastArgs.js"
import { parse } from "../src/internal/parse.js"

const EXIT_CODES = [0, 1, 2, 3, 4, 130]
const RUNS = 1000

// -- command lines ------------------------------------------------------------------------

const tree = nodes(root)
const commandWords = [...new Set(tree.flatMap((n) => n.words))]
const flagWords = [...new Set(tree.flatMap((n) => n.flags.map((f) => f.name)))]

/** Words a command line is made of: real commands and flags, values near their limits, and anything at all. */
const word = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...commandWords, ...builtinProviderNames, "acme") },
  { weight: 4, arbitrary: fc.constantFrom(...flagWords, "-h", "--", "-", "--version", "--completions", "--wizard", "--log-level") },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...flagWords), fc.string()).map(([f, v]) => `${f}=${v}`) },
  {
    weight: 3,
    arbitrary: fc.oneof(
      fc.integer({ min: -100_000, max: 200_000 }).map(String),
      fc.constantFrom("0", "65535", "65536", "99999", "0s", "5m", "1.5h", "25h", "-1", "1e3", "abc", "bash", "zsh", "fish", "sh", " work ", "", "a\nb", "x".repeat(65), "x".repeat(64))
    )
  },
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) }
)
const argv = fc.array(word, { maxLength: 8 })

describe("the command line parser, on generated command lines", () => {
  it(`ends every command line in a plan or a usage error (exit 2), never a throw (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(argv, (args) => {
        const result = parse(root, args)
        if (Either.isLeft(result)) {
          const e = result.left
          expect(e._tag).toBe("UsageError")
          expect(EXIT_CODES).toContain(e.exitCode)
          expect(e.exitCode).toBe(2)
          // One line, printable, and never a long word of the command line echoed back.
          expect(e.message).not.toMatch(/[\n\r\u0000-\u001f\u007f]/)
          for (const w of args) if (w.length > 32) expect(e.message).not.toContain(w)
        } else {
          expect(["Run", "Help", "Version", "Completions"]).toContain(result.right._tag)
        }
      }),
      { numRuns: RUNS }
    )
  })

  it(`reads every line the small bundle runs as the whole CLI does (${RUNS} cases)`, () => {
    const fastWord = fc.oneof(
      fc.constantFrom("status", "token", "--json", "--verbose", "--account", "work", "openai", "anthropic", "acme", "yes", "-x", " a", "https://mcp.example.com/mcp"),
      fc.string({ maxLength: 8 })
    )
    let compared = 0
    fc.assert(
      fc.property(fc.tuple(fc.constantFrom("status", "token"), fc.array(fastWord, { maxLength: 5 })), ([command, rest]) => {
        const args = [command, ...rest]
        const fast = fastArgs(args)
        if (fast === undefined) return
        compared++
        const whole = parse(root, args)
        // The small bundle takes only lines the whole CLI reads as the same command.
        expect(Either.isRight(whole)).toBe(true)
        const plan = Either.getOrThrow(whole)
        expect(plan._tag).toBe("Run")
        if (plan._tag !== "Run") return
        expect(plan.leaf.name).toBe(fast.command)
        expect(plan.values.provider).toBe(fast.provider)
        expect(plan.values.json).toBe(fast.json)
        expect(plan.values.verbose).toBe(fast.verbose)
        if (fast.command === "token") expect(plan.values.account).toBe(fast.account)
      }),
      { numRuns: RUNS }
    )
    expect(compared).toBeGreaterThan(50)
  })
})

// -- config.json documents ----------------------------------------------------------------

const anything = fc.jsonValue({ maxDepth: 2 })
const url = fc.oneof(
  fc.constantFrom("https://login.acme.example", "http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "http://evil.example", "not a url", "", "https://", "file:///etc/passwd"),
  fc.webUrl(),
  fc.string()
)
const providerDoc = fc.record(
  {
    kind: fc.oneof(fc.constantFrom("oidc", "openai", "api_key", "mcp", "bogus"), anything),
    issuer: fc.oneof(url, anything),
    clientId: fc.oneof(fc.string(), anything),
    clientSecret: fc.string(),
    scopes: fc.oneof(fc.array(fc.string()), anything),
    apiBaseUrl: url,
    apiKeyEnv: fc.oneof(fc.array(fc.string()), anything),
    mode: fc.oneof(fc.constantFrom("auto", "prefer_oauth", "api_key_only", "oauth_only"), anything),
    redirect: fc.oneof(fc.record({ ports: fc.array(fc.integer({ min: -10, max: 70_000 })), path: fc.string(), host: fc.string() }, { requiredKeys: [] }), anything),
    authorizeParams: fc.oneof(fc.dictionary(fc.constantFrom("state", "prompt", "audience", "redirect_uri", "x"), fc.string()), anything),
    endpoints: fc.oneof(fc.dictionary(fc.constantFrom("authorization", "token", "revocation", "device", "jwks"), url), anything),
    displayName: fc.string()
  },
  { requiredKeys: [] }
)
const configDoc = fc.record(
  {
    store: fc.oneof(fc.constantFrom("file", "keyring", "auto", "codex", "memory", "postgres"), anything),
    apiKeys: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom(...builtinProviderNames), fc.string()), fc.oneof(fc.string(), anything)), anything),
    providers: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom(...builtinProviderNames, "acme"), fc.string()), providerDoc, { maxKeys: 3 }), anything),
    defaults: fc.oneof(fc.dictionary(fc.string(), fc.string()), anything)
  },
  { requiredKeys: [] }
)
/** Documents of the right shape, with values that may still be refused (an http issuer, a bad store). */
const wellFormed = fc.record({
  store: fc.constantFrom("file", "memory", "codex", "nope"),
  apiKeys: fc.dictionary(fc.constantFrom(...builtinProviderNames), fc.string({ minLength: 1 })),
  providers: fc.dictionary(
    fc.constantFrom("acme", "beta", "openai"),
    fc.record({ kind: fc.constant("oidc"), issuer: fc.constantFrom("https://login.acme.example", "http://127.0.0.1:8080", "http://evil.example"), clientId: fc.string({ minLength: 1 }) }),
    { maxKeys: 2 }
  )
}, { requiredKeys: [] })
/** The text of config.json: a generated document, cut short, or any JSON or none. */
const configText = fc.oneof(
  { weight: 4, arbitrary: wellFormed.map((d) => JSON.stringify(d)) },
  { weight: 6, arbitrary: configDoc.map((d) => JSON.stringify(d)) },
  { weight: 2, arbitrary: fc.tuple(configDoc, fc.nat()).map(([d, n]) => JSON.stringify(d).slice(0, n)) },
  { weight: 1, arbitrary: anything.map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string() }
)

/** No network: any request fails as a transport error. */
const offline = Layer.succeed(
  HttpClient.HttpClient,
  HttpClient.make((request) => Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "offline (test)" })))
)

/** config.json loaded as the CLI loads it (AuthConfig.layer), then the registry over it, each provider looked up. */
const load = (text: string) =>
  Effect.gen(function*() {
    const registry = yield* ProviderRegistry.ProviderRegistry
    for (const p of registry.list) yield* registry.get(p.id)
    return registry.list.length
  }).pipe(
    Effect.provide(ProviderRegistry.layerWith([demoProvider])),
    Effect.provide(AuthConfig.layer),
    Effect.provide(offline),
    Effect.provide(FileSystem.layerNoop({ readFileString: () => Effect.succeed(text) })),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["AGENT_AUTH_HOME", "/home/ada/.agent-auth"]])))
  )

describe("the config loader, on generated config.json documents", () => {
  it(`loads every document or refuses it with a typed error and an exit code, never a defect (${RUNS} cases)`, async () => {
    let loaded = 0
    let refused = 0
    await fc.assert(
      fc.asyncProperty(configText, async (text) => {
        const exit = await Effect.runPromiseExit(load(text))
        if (Exit.isSuccess(exit)) {
          loaded++
          expect(exit.value).toBeGreaterThanOrEqual(builtinProviderNames.length)
          return
        }
        refused++
        expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause)).toBe(false)
        const failure = Cause.failureOption(exit.cause)
        expect(failure._tag).toBe("Some")
        const e = (failure as { value: { _tag: string; exitCode: number; message: string } }).value
        expect(EXIT_CODES).toContain(e.exitCode)
        expect(typeof e.message).toBe("string")
      }),
      { numRuns: RUNS }
    )
    // Both outcomes were exercised, so the property says something about each.
    expect(loaded).toBeGreaterThan(20)
    expect(refused).toBeGreaterThan(20)
  })
})
