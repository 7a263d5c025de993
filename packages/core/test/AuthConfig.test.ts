import { describe, expect, it } from "@effect/vitest"
import { FileSystem } from "@effect/platform"
import { SystemError } from "@effect/platform/Error"
import { ConfigProvider, Duration, Effect, Either, Redacted } from "effect"
import { AuthConfig } from "@agent-auth/core"

const parse = (value: unknown) => AuthConfig.parseConfigFile(JSON.stringify(value), "/home/u/.agent-auth/config.json")

const invalidField = (value: unknown): string => {
  const result = parse(value)
  if (Either.isRight(result)) throw new Error("expected ConfigInvalid")
  expect(result.left._tag).toBe("ConfigInvalid")
  return result.left.field
}

describe("AuthConfig.parseConfigFile", () => {
  it("accepts the documented example, with keys Redacted", () => {
    const result = parse({
      store: "file",
      apiKeys: { anthropic: "sk-ant-secret" },
      providers: {
        acme: { kind: "oidc", issuer: "https://login.acme.example", clientId: "agent-cli", scopes: ["openid"], apiBaseUrl: "https://llm.acme.example/v1" },
        openai: { issuer: "http://127.0.0.1:8080" }
      }
    })
    const file = Either.getOrThrow(result)
    expect(Redacted.isRedacted(file.apiKeys?.anthropic)).toBe(true)
    expect(Redacted.value(file.apiKeys!.anthropic!)).toBe("sk-ant-secret")
    expect(String(file.apiKeys!.anthropic)).not.toContain("secret")
  })

  it("names the field of an unknown key", () => {
    expect(invalidField({ providers: { acme: { issuer: "https://x.example", clientId: "c", colour: "red" } } })).toBe("providers.acme.colour")
    expect(invalidField({ stroe: "file" })).toBe("stroe")
  })

  it("names the field of a wrong type", () => {
    expect(invalidField({ providers: { acme: { scopes: "openid" } } })).toBe("providers.acme.scopes")
    expect(invalidField({ store: "floppy" })).toBe("store")
  })

  it("refuses plain http issuers that are not loopback", () => {
    expect(invalidField({ providers: { acme: { issuer: "http://login.acme.example" } } })).toBe("providers.acme.issuer")
    expect(invalidField({ providers: { acme: { endpoints: { token: "http://10.0.0.1/token" } } } })).toBe("providers.acme.endpoints.token")
    expect(Either.isRight(parse({ providers: { acme: { issuer: "http://localhost:9000" } } }))).toBe(true)
  })

  it("refuses a provider id with path characters", () => {
    expect(invalidField({ providers: { "../evil": { issuer: "https://x.example" } } })).toBe("providers.../evil")
    expect(invalidField({ apiKeys: { "a/b": "k" } })).toBe("apiKeys.a/b")
  })

  it("reports text that is not JSON", () => {
    const result = AuthConfig.parseConfigFile("{ nope", "c.json")
    expect(Either.isLeft(result) && result.left.field).toBe("(root)")
  })

  it("takes the refresh skew from the file, 5 minutes by default", () => {
    expect(Duration.toMinutes(AuthConfig.make({}).refreshSkew)).toBe(5)
    expect(Duration.toSeconds(AuthConfig.make({ file: { refreshSkewSeconds: 60 } }).refreshSkew)).toBe(60)
  })
})

describe("AuthConfig.layer", () => {
  /** The settings under an environment, over a file system where config.json does not exist. */
  const settings = (env: Record<string, string>) => {
    const read: Array<string> = []
    const files = FileSystem.layerNoop({
      readFileString: (path) => {
        read.push(path)
        return Effect.fail(new SystemError({ reason: "NotFound", module: "FileSystem", method: "readFileString", pathOrDescriptor: path }))
      }
    })
    return AuthConfig.AuthConfig.pipe(
      Effect.provide(AuthConfig.layer),
      Effect.provide(files),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
      Effect.map((config) => ({ home: config.home, read }))
    )
  }

  it.effect("AGENT_AUTH_HOME, else $HOME/.agent-auth; config.json is read from there", () =>
    Effect.gen(function*() {
      expect(yield* settings({ AGENT_AUTH_HOME: "/srv/auth", HOME: "/home/u" })).toEqual({ home: "/srv/auth", read: ["/srv/auth/config.json"] })
      expect(yield* settings({ HOME: "/home/u" })).toEqual({ home: "/home/u/.agent-auth", read: ["/home/u/.agent-auth/config.json"] })
    }))

  it.effect("an empty AGENT_AUTH_HOME (or HOME) counts as unset: never the current folder", () =>
    Effect.gen(function*() {
      expect((yield* settings({ AGENT_AUTH_HOME: "", HOME: "/home/u" })).home).toBe("/home/u/.agent-auth")
      expect((yield* settings({ AGENT_AUTH_HOME: "", HOME: "" })).home).toBe("./.agent-auth")
    }))
})
