/**
 * The keychain store against a real Secret Service: run through scripts/with-keyring.sh
 * (the root `test` script does). Without a keychain these tests fail; they never skip.
 */
import { AuthConfig, Domain } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer, Logger, Option, Redacted, Scope } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as NodePath from "node:path"
import * as TokenStoreSuite from "@agent-auth/testing/TokenStoreSuite"
import * as NodeKeyringStore from "../src/NodeKeyringStore.js"
import * as NodeTokenStore from "../src/NodeTokenStore.js"

const tempHome: Effect.Effect<string, never, FileSystem.FileSystem | Scope.Scope> = Effect.flatMap(
  FileSystem.FileSystem,
  (fs) => fs.makeTempDirectoryScoped({ prefix: "agent-auth-keyring-" })
).pipe(Effect.map((dir) => NodePath.join(dir, "home")), Effect.orDie)

describe("the test environment", () => {
  it("has a keychain (run through scripts/with-keyring.sh)", () => {
    expect(process.env.DBUS_SESSION_BUS_ADDRESS, "no session bus: run the tests through scripts/with-keyring.sh").toBeTruthy()
    expect(() => execFileSync("secret-tool", ["search", "--all", "agent-auth-none", "x"], { stdio: "ignore" })).not.toThrow()
  })
})

// The shared suite: each test a home of its own, so a keychain service of its own.
TokenStoreSuite.suite(
  "layerKeyring",
  Layer.unwrapScoped(
    Effect.map(tempHome, (home) => NodeKeyringStore.layerKeyring.pipe(Layer.provide(AuthConfig.layerWith({ home }))))
  ).pipe(Layer.provide(NodeFileSystem.layer))
)

const withStore = <A, E>(
  body: (store: NodeKeyringStore.KeyringTokenStore, home: string) => Effect.Effect<A, E, FileSystem.FileSystem | Scope.Scope>
) =>
  Effect.gen(function*() {
    const home = yield* tempHome
    const store = yield* NodeKeyringStore.makeKeyring().pipe(Effect.provide(AuthConfig.layerWith({ home })))
    return yield* body(store, home)
  }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))

/** Every file under `dir`, recursively, with its text. */
const filesUnder = (dir: string): Array<[string, string]> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => {
      const file = NodePath.join(d.parentPath, d.name)
      return [file, fs.readFileSync(file, "latin1")]
    })

describe("layerKeyring", () => {
  it.live("secret-tool, the reference Secret Service client, finds our item; no file under the home holds a secret", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const login = TokenStoreSuite.oauthCredential("demo", "ada", "canary-access-token-5d1f")
        yield* store.set(login)
        const service = yield* store.service
        expect(service).toBe(`agent-auth:${home}`)
        const secret = execFileSync("secret-tool", ["lookup", "service", service, "username", "demo/ada"], { encoding: "utf8" })
        expect(JSON.parse(secret)).toStrictEqual(TokenStoreSuite.encoded(login))
        const files = filesUnder(home)
        expect(files.map(([f]) => NodePath.basename(f))).toContain("keyring.json")
        for (const [file, text] of files) {
          for (const s of ["canary-access-token-5d1f", "rt-demo-ada", "id-demo-ada"]) {
            expect({ file, leaks: text.includes(s) }).toEqual({ file, leaks: false })
          }
        }
        // The index is the file store's kind of file: private.
        expect(fs.statSync(NodePath.join(home, "keyring.json")).mode & 0o777).toBe(0o600)
        // Removed from the keychain, not only from the index.
        expect(yield* store.remove({ provider: "demo", account: "ada" })).toBe(true)
        expect(() => execFileSync("secret-tool", ["lookup", "service", service, "username", "demo/ada"], { stdio: "ignore" }))
          .toThrow()
      })))

  it.live("a second instance (another process) sees a write through the index stamp", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const other = yield* NodeKeyringStore.makeKeyring().pipe(Effect.provide(AuthConfig.layerWith({ home })))
        yield* store.set(TokenStoreSuite.apiKeyCredential("anthropic", "default", "1"))
        expect(TokenStoreSuite.counterOf(yield* other.get({ provider: "anthropic", account: "default" }))).toBe(1)
        const before = other.revision()
        yield* store.set(TokenStoreSuite.apiKeyCredential("anthropic", "default", "2"))
        expect(TokenStoreSuite.counterOf(yield* other.get({ provider: "anthropic", account: "default" }))).toBe(2)
        expect(other.revision()).not.toBe(before)
      })))

  it.live("logins in credentials.json move into the keychain, and out of the file, saying so", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const config = AuthConfig.layerWith({ home })
      const file = yield* NodeTokenStore.makeFile().pipe(Effect.provide(config))
      yield* file.set(TokenStoreSuite.oauthCredential("openai", "ada", "canary-moved-7a2b"))
      yield* file.set(TokenStoreSuite.apiKeyCredential("anthropic", "default", "sk-canary-moved"))
      const logs: Array<string> = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String(message))))
      const store = yield* NodeKeyringStore.makeKeyring().pipe(Effect.provide(config))
      const listed = yield* store.list().pipe(Effect.provide(capture))
      expect(logs.filter((l) => l.includes("moved 2 credential(s)") && l.includes("into the system keychain"))).toHaveLength(1)
      expect(listed.map(Domain.keyString)).toEqual(["anthropic/default", "openai/ada"])
      const moved = Option.getOrThrow(yield* store.get({ provider: "openai", account: "ada" }))
      expect(moved._tag === "OAuthCredential" && Redacted.value(moved.tokens.accessToken)).toBe("canary-moved-7a2b")
      expect(yield* file.list()).toEqual([])
      const text = fs.readFileSync(NodePath.join(home, "credentials.json"), "utf8")
      expect(text).not.toContain("canary-moved-7a2b")
      expect(text).not.toContain("sk-canary-moved")
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})

describe("layerAuto, with a keychain", () => {
  it.live("a new secret goes to the keychain; one in the file stays there and is found", () =>
    Effect.gen(function*() {
      const home = yield* tempHome
      const config = AuthConfig.layerWith({ home })
      const file = yield* NodeTokenStore.makeFile().pipe(Effect.provide(config))
      yield* file.set(TokenStoreSuite.apiKeyCredential("anthropic", "default", "sk-in-file"))
      const auto = yield* NodeKeyringStore.makeAuto().pipe(Effect.provide(config))
      yield* auto.set(TokenStoreSuite.oauthCredential("demo", "ada", "canary-auto-3c4d"))
      expect((yield* auto.list()).map(Domain.keyString)).toEqual(["anthropic/default", "demo/ada"])
      expect(auto.locationOf?.({ provider: "demo", account: "ada" })).toContain("Secret Service")
      expect(auto.locationOf?.({ provider: "anthropic", account: "default" })).toBe(NodePath.join(home, "credentials.json"))
      for (const [f, text] of filesUnder(home)) expect({ f, leaks: text.includes("canary-auto-3c4d") }).toEqual({ f, leaks: false })
      // A refresh (modify) of the login stays in the keychain.
      yield* auto.modify({ provider: "demo", account: "ada" }, () =>
        Effect.succeed(Option.some(TokenStoreSuite.oauthCredential("demo", "ada", "canary-auto-2"))))
      const got = Option.getOrThrow(yield* auto.get({ provider: "demo", account: "ada" }))
      expect(got._tag === "OAuthCredential" && Redacted.value(got.tokens.accessToken)).toBe("canary-auto-2")
      expect(yield* auto.remove({ provider: "demo", account: "ada" })).toBe(true)
      expect((yield* auto.list()).map(Domain.keyString)).toEqual(["anthropic/default"])
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})

