/**
 * `NodeCodexStore`: the OpenAI login in the Codex CLI's auth.json, read and written in
 * Codex's format in place; other providers in credentials.json. Real files in a temp
 * folder; time (re-reads of a half-written file) under TestClock.
 */
import { AuthConfig, Domain, StoreCorrupted, StoreError } from "@agent-auth/core"
import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, DateTime, Duration, Effect, Fiber, Option, Redacted, Scope, TestClock } from "effect"
import * as fsp from "node:fs/promises"
import * as NodePath from "node:path"
import * as NodeCodexStore from "../src/NodeCodexStore.js"

// ---------------------------------------------------------------- fixtures

const jwt = (payload: Record<string, unknown>) =>
  `${Buffer.from(JSON.stringify({ alg: "RS256" })).toString("base64url")}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.c2ln`

const ACCESS_EXP = 4_102_444_800 // 2100-01-01
const idToken = (accountId = "acct-1", email = "ada@example.test") =>
  jwt({
    sub: "user-1",
    email,
    "https://api.openai.com/auth": { chatgpt_account_id: accountId, chatgpt_plan_type: "plus", organization_id: "org-1" }
  })
const accessToken = (n = 1) => jwt({ exp: ACCESS_EXP, scp: ["openid", "offline_access"], n })

const chatgptFile = (extra: Record<string, unknown> = {}, tokenExtra: Record<string, unknown> = {}) => ({
  auth_mode: "chatgpt",
  OPENAI_API_KEY: null,
  tokens: { id_token: idToken(), access_token: accessToken(), refresh_token: "rt-1", account_id: "acct-1", ...tokenExtra },
  last_refresh: "2026-01-01T00:00:00.123456Z",
  ...extra
})

const oauth = (options: { account?: string; access?: number; refresh?: string | undefined; id?: string | undefined } = {}) =>
  Domain.OAuthCredential.make({
    provider: "openai",
    account: options.account ?? "acct-1",
    tokens: Domain.TokenSet.make({
      accessToken: Redacted.make(accessToken(options.access ?? 2)),
      ...("refresh" in options && options.refresh === undefined ? {} : { refreshToken: Redacted.make(options.refresh ?? "rt-2") }),
      ...("id" in options && options.id === undefined ? {} : { idToken: Redacted.make(options.id ?? idToken()) }),
      expiresAt: DateTime.unsafeMake(ACCESS_EXP * 1000),
      scopes: ["openid"],
      tokenType: "Bearer"
    }),
    claims: Domain.AccountClaims.make({ accountId: "acct-1", email: "ada@example.test", plan: "plus" }),
    obtainedAt: DateTime.unsafeMake("2026-02-01T00:00:00.000Z"),
    refreshedAt: DateTime.unsafeMake("2026-03-01T00:00:00.000Z")
  })

const apiKey = (provider = "openai", key = "sk-test-0123456789abcdef") =>
  Domain.ApiKeyCredential.make({ provider, account: "default", key: Redacted.make(key), obtainedAt: DateTime.unsafeMake("2026-01-01T00:00:00Z") })

const key = { provider: "openai", account: "acct-1" }
const promise = <A>(f: () => Promise<A>) => Effect.promise(f)
const readJson = (p: string) => promise(() => fsp.readFile(p, "utf8")).pipe(Effect.map((t) => JSON.parse(t) as Record<string, any>))
const exists = (p: string) => promise(() => fsp.access(p).then(() => true, () => false))

interface Fixture {
  readonly dir: string
  readonly codexHome: string
  readonly path: string
  readonly home: string
  readonly store: Effect.Effect.Success<ReturnType<typeof NodeCodexStore.makeCodex>>
  readonly write: (content: unknown) => Effect.Effect<void>
}

const fixture = (options: NodeCodexStore.CodexOptions = {}): Effect.Effect<Fixture, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "agent-auth-codex-" }).pipe(Effect.orDie)
    const codexHome = NodePath.join(dir, "codex")
    const home = NodePath.join(dir, "home")
    const path = NodePath.join(codexHome, "auth.json")
    const store = yield* NodeCodexStore.makeCodex({ path, ...options }).pipe(
      Effect.provide(AuthConfig.layerWith({ home })),
      Effect.orDie
    )
    const write = (content: unknown) =>
      promise(async () => {
        await fsp.mkdir(codexHome, { recursive: true })
        await fsp.writeFile(path, typeof content === "string" ? content : JSON.stringify(content, null, 2), { mode: 0o600 })
      })
    return { dir, codexHome, path, home, store, write }
  }).pipe(Effect.provide(NodeFileSystem.layer))

// ---------------------------------------------------------------- reading

describe("NodeCodexStore: reading Codex's file", () => {
  it.scoped("a ChatGPT login: account id from tokens.account_id, display claims from the ID token, expiry from the access token", () =>
    Effect.gen(function*() {
      const { store, write } = yield* fixture()
      // tokens.account_id wins over the ID token's claim: it is what Codex sends as ChatGPT-Account-Id.
      yield* write(chatgptFile({}, { account_id: "acct-from-tokens" }))
      const [login] = yield* store.list("openai")
      expect(login?._tag).toBe("OAuthCredential")
      if (login?._tag !== "OAuthCredential") return
      expect(login.account).toBe("acct-from-tokens")
      expect(login.claims).toMatchObject({ accountId: "acct-from-tokens", email: "ada@example.test", plan: "plus", organization: "org-1", subject: "user-1" })
      expect(Redacted.value(login.tokens.refreshToken!)).toBe("rt-1")
      expect(Redacted.value(login.tokens.idToken!)).toBe(idToken())
      expect(DateTime.toEpochMillis(login.tokens.expiresAt!)).toBe(ACCESS_EXP * 1000)
      expect(login.tokens.scopes).toEqual(["openid", "offline_access"])
      expect(DateTime.formatIso(login.refreshedAt!)).toBe("2026-01-01T00:00:00.123Z")
      expect(Option.isSome(yield* store.get({ provider: "openai", account: "acct-from-tokens" }))).toBe(true)
      expect(Option.isNone(yield* store.get({ provider: "openai", account: "acct-1" }))).toBe(true)
    }))

  it.scoped("which login a file holds follows Codex: auth_mode, else the API key, else the tokens", () =>
    Effect.gen(function*() {
      const { store, write } = yield* fixture()
      const tokens = chatgptFile().tokens
      const cases: ReadonlyArray<[unknown, string | undefined]> = [
        [{ auth_mode: "apikey", OPENAI_API_KEY: "sk-a" }, "ApiKeyCredential"],
        [{ OPENAI_API_KEY: "sk-b" }, "ApiKeyCredential"],
        [{ OPENAI_API_KEY: "sk-c", tokens }, "ApiKeyCredential"],
        [{ OPENAI_API_KEY: null, tokens }, "OAuthCredential"],
        [{ tokens }, "OAuthCredential"],
        [{ auth_mode: "chatgpt", OPENAI_API_KEY: "sk-d", tokens }, "OAuthCredential"],
        [{ auth_mode: "chatgpt", OPENAI_API_KEY: null }, undefined],
        [{ auth_mode: "apikey", OPENAI_API_KEY: null, tokens }, undefined],
        [{ OPENAI_API_KEY: null }, undefined]
      ]
      for (const [content, tag] of cases) {
        yield* write(content)
        const list = yield* store.list()
        expect(list.map((c) => c._tag), JSON.stringify(content)).toEqual(tag === undefined ? [] : [tag])
        if (tag === "ApiKeyCredential") expect(list[0]!.account).toBe("default")
      }
    }))

  it.scoped("a file Codex could not read is StoreCorrupted naming the file and the field, and left exactly in place", () =>
    Effect.gen(function*() {
      const { codexHome, path, store, write } = yield* fixture({ rereads: 0 })
      const bad = { ...chatgptFile(), tokens: { ...chatgptFile().tokens, id_token: "not-a-jwt" } }
      yield* write(bad)
      const before = yield* promise(() => fsp.readFile(path, "utf8"))
      const e = yield* Effect.flip(store.get(key))
      expect(e).toBeInstanceOf(StoreCorrupted)
      expect(e.message).toContain(path)
      expect(e.message).toContain("tokens.id_token")
      expect(e.message).not.toContain("not-a-jwt")
      const e2 = yield* Effect.flip(store.set(oauth()))
      expect(e2._tag).toBe("StoreCorrupted")
      // Not moved aside, not overwritten: the file is Codex's.
      expect(yield* promise(() => fsp.readFile(path, "utf8"))).toBe(before)
      expect((yield* promise(() => fsp.readdir(codexHome))).filter((f) => f.startsWith("auth.json"))).toEqual(["auth.json"])
      for (const content of ["{ not json", "[]", JSON.stringify({ tokens: { id_token: idToken(), access_token: "a" } })]) {
        yield* write(content)
        expect((yield* Effect.flip(store.list()))._tag).toBe("StoreCorrupted")
      }
    }))

  it.scoped("a half-written file (Codex rewrites in place) is re-read on the Clock until it parses", () =>
    Effect.gen(function*() {
      const { store, write } = yield* fixture({ rereads: 3, rereadDelay: "50 millis" })
      yield* write("{\"auth_mode\": \"chatg")
      const fiber = yield* Effect.fork(store.get({ provider: "openai", account: "acct-1" }))
      yield* TestClock.adjust("50 millis")
      yield* write(chatgptFile())
      for (let i = 0; i < 3 && fiber.unsafePoll() === null; i++) {
        yield* promise(() => new Promise((r) => setImmediate(r)))
        yield* TestClock.adjust("50 millis")
      }
      const got = yield* Fiber.join(fiber)
      expect(Option.isSome(got)).toBe(true)
    }))

  it.scoped("a symbolic link at auth.json is refused (an atomic rename would replace the link)", () =>
    Effect.gen(function*() {
      const { dir, codexHome, path, store } = yield* fixture()
      const real = NodePath.join(dir, "real.json")
      yield* promise(() => fsp.writeFile(real, JSON.stringify(chatgptFile())))
      yield* promise(() => fsp.mkdir(codexHome, { recursive: true }))
      yield* promise(() => fsp.symlink(real, path))
      expect((yield* Effect.flip(store.get(key)))._tag).toBe("StorePermissions")
      expect((yield* Effect.flip(store.set(oauth())))._tag).toBe("StorePermissions")
      expect((yield* promise(() => fsp.lstat(path))).isSymbolicLink()).toBe(true)
    }))

  it.effect("CODEX_HOME is read through Effect's Config; else $HOME/.codex", () =>
    Effect.gen(function*() {
      const withEnv = (env: Record<string, string>) =>
        Effect.withConfigProvider(NodeCodexStore.defaultPath, ConfigProvider.fromMap(new Map(Object.entries(env))))
      expect(yield* withEnv({ CODEX_HOME: "/x/codex-home", HOME: "/home/u" })).toBe("/x/codex-home/auth.json")
      expect(yield* withEnv({ HOME: "/home/u" })).toBe("/home/u/.codex/auth.json")
    }))
})

// ---------------------------------------------------------------- writing

describe("NodeCodexStore: writing Codex's file", () => {
  it.scoped("a ChatGPT login is written in Codex's format: every field, OPENAI_API_KEY null, 0600, nothing else left behind", () =>
    Effect.gen(function*() {
      const { codexHome, path, store } = yield* fixture()
      yield* store.set(oauth())
      const json = yield* readJson(path)
      expect(Object.keys(json)).toEqual(["auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh"])
      expect(json).toEqual({
        auth_mode: "chatgpt",
        OPENAI_API_KEY: null,
        tokens: { id_token: idToken(), access_token: accessToken(2), refresh_token: "rt-2", account_id: "acct-1" },
        last_refresh: "2026-03-01T00:00:00.000Z"
      })
      expect((yield* promise(() => fsp.stat(path))).mode & 0o777).toBe(0o600)
      // Only the file and our lock's folder entries: no temp file, and no Codex lock name used.
      expect((yield* promise(() => fsp.readdir(codexHome))).sort()).toEqual(["auth.json"])
      expect(store.lockPath).toBe(`${path}.agent-auth.lock`)
      // It reads back as the very login (same key, same tokens).
      const back = Option.getOrThrow(yield* store.get(key))
      expect(Domain.keyString(back)).toBe("openai/acct-1")
      if (back._tag === "OAuthCredential") expect(Redacted.value(back.tokens.refreshToken!)).toBe("rt-2")
    }))

  it.scoped("a temp file left by an agent-auth killed mid-write (it holds tokens) is removed by the next write; other files are not", () =>
    Effect.gen(function*() {
      const { codexHome, path, store, write } = yield* fixture()
      yield* write({ auth_mode: "apikey", OPENAI_API_KEY: "sk-old-0123456789abcdef" })
      const leftover = NodePath.join(codexHome, ".auth.json.Zx81kQ2pLr0aBc1d.tmp")
      yield* promise(() => fsp.writeFile(leftover, JSON.stringify({ tokens: { refresh_token: "rt-left-behind" } }), { mode: 0o600 }))
      // Files that are not ours: Codex's lock, another file's temp.
      yield* promise(() => fsp.writeFile(NodePath.join(codexHome, "auth.json.lock"), ""))
      yield* promise(() => fsp.writeFile(NodePath.join(codexHome, ".config.toml.abc.tmp"), ""))
      yield* store.set(oauth())
      expect(yield* exists(leftover)).toBe(false)
      expect((yield* promise(() => fsp.readdir(codexHome))).sort()).toEqual([".config.toml.abc.tmp", "auth.json", "auth.json.lock"])
      expect((yield* readJson(path)).tokens.refresh_token).toBe("rt-2")
    }))

  it.scoped("a change Codex's format cannot hold (a remembered refusal) does not rewrite the file", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture()
      yield* store.set(oauth())
      const before = yield* promise(() => fsp.stat(path, { bigint: true }))
      const refused = new Domain.OAuthCredential({
        ...oauth(),
        refusal: Domain.Refusal.make({ reason: "invalid_grant", at: DateTime.unsafeMake("2026-03-02T00:00:00.000Z") })
      })
      yield* store.modify(key, () => Effect.succeed(Option.some<Domain.StoredCredential>(refused)))
      const after = yield* promise(() => fsp.stat(path, { bigint: true }))
      expect(after.ino).toBe(before.ino)
      expect(after.mtimeNs).toBe(before.mtimeNs)
    }))

  it.scoped("a rewrite keeps fields it does not know (top level and in tokens) and Codex's OPENAI_API_KEY", () =>
    Effect.gen(function*() {
      const { path, store, write } = yield* fixture()
      yield* write(chatgptFile({ OPENAI_API_KEY: "sk-kept-0123456789", agent_identity: null, future: { a: [1] } }, { future_token: "x" }))
      // A refresh, as the Refresher does it: modify the login read under the lock.
      yield* store.modify(key, (current) =>
        Effect.succeed(Option.map(current, (c) =>
          c._tag === "OAuthCredential"
            ? Domain.OAuthCredential.make({ ...c, tokens: Domain.TokenSet.make({ ...c.tokens, accessToken: Redacted.make(accessToken(3)), refreshToken: Redacted.make("rt-3") }) })
            : c)))
      const json = yield* readJson(path)
      expect(json.OPENAI_API_KEY).toBe("sk-kept-0123456789")
      expect(json.agent_identity).toBe(null)
      expect(json.future).toEqual({ a: [1] })
      expect(json.tokens).toEqual({ id_token: idToken(), access_token: accessToken(3), refresh_token: "rt-3", account_id: "acct-1", future_token: "x" })
      expect(json.auth_mode).toBe("chatgpt")
    }))

  it.scoped("an API key is written as Codex's API-key login (no tokens, no last_refresh)", () =>
    Effect.gen(function*() {
      const { path, store, write } = yield* fixture()
      yield* write(chatgptFile({ kept: true }))
      yield* store.set(apiKey())
      expect(yield* readJson(path)).toEqual({ auth_mode: "apikey", OPENAI_API_KEY: "sk-test-0123456789abcdef", kept: true })
      const [c] = yield* store.list("openai")
      expect(c?._tag).toBe("ApiKeyCredential")
    }))

  it.scoped("a login Codex could not read back is refused, and the file is left as it was", () =>
    Effect.gen(function*() {
      const { path, store, write } = yield* fixture()
      yield* write(chatgptFile())
      const before = yield* promise(() => fsp.readFile(path, "utf8"))
      const noRefresh = yield* Effect.flip(store.set(oauth({ refresh: undefined })))
      expect(noRefresh).toBeInstanceOf(StoreError)
      expect(noRefresh.message).toContain("refresh token")
      const notJwt = yield* Effect.flip(store.set(oauth({ id: "opaque-id-token" })))
      expect(notJwt.message).toContain("JWT")
      expect(notJwt.message).not.toContain("opaque-id-token")
      // `login --account work`: the file could not give that name back.
      const named = yield* Effect.flip(store.set(oauth({ account: "work" })))
      expect(named.message).toContain("\"work\"")
      expect(named.message).toContain("AGENT_AUTH_STORE=file")
      expect(yield* promise(() => fsp.readFile(path, "utf8"))).toBe(before)
    }))

  it.scoped("modify re-reads under the lock: tokens Codex wrote meanwhile are what f sees", () =>
    Effect.gen(function*() {
      const { store, write } = yield* fixture()
      yield* write(chatgptFile())
      const first = Option.getOrThrow(yield* store.get(key))
      // Codex refreshes behind our back (in place, as it writes).
      yield* write(chatgptFile({}, { access_token: accessToken(9), refresh_token: "rt-codex" }))
      let seen: Domain.StoredCredential | undefined
      yield* store.modify(key, (current) => Effect.sync(() => (seen = Option.getOrUndefined(current))).pipe(Effect.as(current)))
      expect(seen).not.toBe(first)
      expect(seen?._tag === "OAuthCredential" && Redacted.value(seen.tokens.refreshToken!)).toBe("rt-codex")
    }))

  it.scoped("revision: our writes change it; Codex's writes and its logout change it at our next read", () =>
    Effect.gen(function*() {
      const { path, store, write } = yield* fixture()
      yield* write(chatgptFile())
      yield* store.get(key)
      let seen = store.revision()
      yield* store.get(key)
      expect(store.revision()).toBe(seen)
      yield* store.set(oauth())
      expect(store.revision()).not.toBe(seen)
      seen = store.revision()
      // Codex refreshes behind our back: seen by the next read, not before.
      yield* write(chatgptFile({}, { access_token: accessToken(9), refresh_token: "rt-codex" }))
      expect(store.revision()).toBe(seen)
      yield* store.get(key)
      expect(store.revision()).not.toBe(seen)
      seen = store.revision()
      // `codex logout` deletes the file.
      yield* promise(() => fsp.rm(path))
      expect(Option.isNone(yield* store.get(key))).toBe(true)
      expect(store.revision()).not.toBe(seen)
      // Other providers live in credentials.json: their writes count too.
      seen = store.revision()
      yield* store.set(apiKey("anthropic", "sk-ant-test"))
      expect(store.revision()).not.toBe(seen)
    }))

  it.scoped("remove deletes the file (Codex's logout does), and only for the login it holds", () =>
    Effect.gen(function*() {
      const { path, store, write } = yield* fixture()
      yield* write(chatgptFile())
      expect(yield* store.remove({ provider: "openai", account: "someone-else" })).toBe(false)
      expect(yield* exists(path)).toBe(true)
      expect(yield* store.remove(key)).toBe(true)
      expect(yield* exists(path)).toBe(false)
      expect(yield* store.remove(key)).toBe(false)
    }))

  it.scoped("Codex's own lock files are never taken, waited for or removed", () =>
    Effect.gen(function*() {
      const { codexHome, store, write } = yield* fixture({ lockTimeout: Duration.millis(1) })
      yield* write(chatgptFile())
      for (const name of ["auth.json.lock", "auth.lock"]) {
        yield* promise(() => fsp.writeFile(NodePath.join(codexHome, name), "codex"))
      }
      yield* store.set(oauth())
      for (const name of ["auth.json.lock", "auth.lock"]) {
        expect(yield* promise(() => fsp.readFile(NodePath.join(codexHome, name), "utf8"))).toBe("codex")
      }
    }))
})

// ---------------------------------------------------------------- the composite store

describe("NodeCodexStore.layerCodex: OpenAI in auth.json, the others in credentials.json", () => {
  it.scoped("routes by provider; list merges both in order", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      yield* store.set(oauth())
      yield* store.set(apiKey("anthropic", "sk-ant-0123456789abcdef"))
      yield* store.set(apiKey("acme", "acme-key-0123456789"))
      expect(Object.keys(yield* readJson(path))).not.toContain("version")
      const credentials = yield* readJson(NodePath.join(home, "credentials.json"))
      expect(credentials.credentials.map((c: { provider: string }) => c.provider).sort()).toEqual(["acme", "anthropic"])
      expect((yield* store.list()).map(Domain.keyString)).toEqual(["acme/default", "anthropic/default", "openai/acct-1"])
      expect((yield* store.list("anthropic")).length).toBe(1)
      expect(store.location).toContain(path)
      expect(store.location).toContain(NodePath.join(home, "credentials.json"))
      expect(yield* store.remove({ provider: "anthropic", account: "default" })).toBe(true)
      expect(yield* exists(path)).toBe(true)
    }))

  it.scoped("layerCodexOnly refuses other providers with a StoreError saying why", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped().pipe(Effect.orDie)
      const store = yield* NodeCodexStore.makeCodexOnly({ path: NodePath.join(dir, "auth.json") }).pipe(
        Effect.provide(AuthConfig.layerWith({ home: dir })),
        Effect.orDie
      )
      const e = yield* Effect.flip(store.set(apiKey("anthropic")))
      expect(e.message).toContain("only the openai login")
      expect(Option.isNone(yield* store.get({ provider: "anthropic", account: "default" }))).toBe(true)
      expect(yield* store.list("anthropic")).toEqual([])
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
