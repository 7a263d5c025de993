/**
 * `layerCodex` (`AGENT_AUTH_STORE=codex`): the OpenAI login lives in the Codex CLI's own
 * `$CODEX_HOME/auth.json` (default `~/.codex/auth.json`), read and written in place in
 * exactly Codex's format (internal/codexAuthFile.ts), so agent-auth and Codex share one
 * login instead of holding two copies of a single-use refresh token. Every other provider
 * goes to the file store (`credentials.json`): Codex's file has room for OpenAI only.
 *
 * The Codex file:
 * - holds one login: ChatGPT tokens (stored under the ChatGPT account id, as `login` names
 *   it) or an API key (account `default`). Storing another login replaces it, as
 *   `codex login` does; a login under another name (`--account work`) is refused, since
 *   the file could not give that name back.
 * - is written whole (temp file + fsync + rename, 0600, internal/atomicFile.ts), keeping
 *   every field we do not know; temp files left by an agent-auth killed mid-write are
 *   removed by the next write, as the file store does; `remove` deletes it, as `codex logout` does. A file Codex
 *   itself could not read is reported (`StoreCorrupted`) and left alone: never moved aside,
 *   never overwritten — it is not ours.
 * - claims (email, plan, organization) are read from the ID token without verification
 *   (Codex's file carries no verification state): for display. The account id, which
 *   becomes `ChatGPT-Account-Id`, is `tokens.account_id`, as Codex sends it.
 * - the expiry is the access token's JWT `exp`.
 *
 * Coordination. Writes by agent-auth processes are serialised by our cross-process lock
 * (internal/fileLock.ts) on `auth.json.agent-auth.lock` beside the file; every
 * read-modify-write re-reads the file under it, so a refresh (`Refresher` refreshes inside
 * `modify`) sees tokens Codex or another agent-auth wrote and skips its own. What Codex
 * does is not coordinated by that lock: Codex does not take it, and the lock files Codex
 * keeps (`auth.json.lock`, `auth.lock`) are left strictly alone — their protocol is not
 * documented, and an O_EXCL lock of ours under the same name could take over (delete) a
 * file Codex holds an advisory lock on. So a Codex refresh and ours can still race in the
 * window between our re-read and our write (one of them then gets `refresh_token_reused`
 * and must log in again); outside that window each sees the other's rotation. Codex
 * rewrites the file in place (truncate, then write), so a read that lands in the middle
 * is re-read a few times before the file is called malformed.
 */
import { AuthConfig, ConfigInvalid, Domain, StoreCorrupted, StoreError, StorePermissions, TokenStore } from "@agent-auth/core"
import type { TokenStoreError } from "@agent-auth/core"
import { FileSystem } from "@effect/platform"
import { Config, DateTime, Duration, Effect, Either, Layer, Option, Ref } from "effect"
import type { BigIntStats } from "node:fs"
import * as os from "node:os"
import * as NodePath from "node:path"
import { fromPlatformError, lstat, removeLeftoverTemps, writeAtomic } from "./internal/atomicFile.js"
import * as CodexFile from "./internal/codexAuthFile.js"
import * as FileLock from "./internal/fileLock.js"
import * as NodeTokenStore from "./NodeTokenStore.js"

/** The provider whose login lives in Codex's file. */
export const OPENAI = "openai"

export interface CodexOptions {
  /** The auth.json; default `$CODEX_HOME/auth.json`, else `~/.codex/auth.json`. */
  readonly path?: string
  /** How long a write waits for another agent-auth's lock; default `AuthConfig.lockTimeout`. */
  readonly lockTimeout?: Duration.DurationInput
  /** A lock its holder has not touched for this long is abandoned; default 30 s. */
  readonly lockStaleAfter?: Duration.DurationInput
  /** Re-reads of a file that does not parse (Codex may be mid-write); default 3. */
  readonly rereads?: number
  /** Time between those re-reads (Effect's Clock); default 50 ms. */
  readonly rereadDelay?: Duration.DurationInput
  /** `layerCodex` only: options of the file store that holds the other providers. */
  readonly file?: NodeTokenStore.FileOptions
}

export interface CodexTokenStore extends TokenStore.TokenStoreShape {
  /** Codex's auth.json. */
  readonly path: string
  /** Our lock beside it. */
  readonly lockPath: string
}

/** `$CODEX_HOME`, else `$HOME/.codex`, read through Effect's Config. */
export const codexHome: Effect.Effect<string, ConfigInvalid> = Effect.gen(function*() {
  const env = yield* Effect.all({
    codexHome: Config.option(Config.string("CODEX_HOME")),
    home: Config.option(Config.string("HOME"))
  }).pipe(Effect.mapError((e) => new ConfigInvalid({ source: "environment", field: "CODEX_HOME", reason: String(e) })))
  const codex = Option.filter(env.codexHome, (s) => s.length > 0)
  if (Option.isSome(codex)) return NodePath.resolve(codex.value)
  return NodePath.join(Option.getOrElse(Option.filter(env.home, (s) => s.length > 0), () => os.homedir()), ".codex")
})

/** Codex's auth.json: `$CODEX_HOME/auth.json`, default `~/.codex/auth.json`. */
export const defaultPath: Effect.Effect<string, ConfigInvalid> = Effect.map(codexHome, (h) => NodePath.join(h, "auth.json"))

// ---------------------------------------------------------------------------------------
// reading

/** Identity of a file version: Codex rewrites in place (new size or mtime), we rename (new inode). */
const statKey = (st: BigIntStats) => `${st.ino}:${st.size}:${st.mtimeNs}`

/** What is on disk: nothing, or a parsed file, the login it holds (decoded once per file version) and its identity. */
export type OnDisk =
  | { readonly _tag: "Missing" }
  | {
    readonly _tag: "Present"
    readonly file: CodexFile.CodexAuthFile
    readonly login: Option.Option<Domain.StoredCredential>
    readonly key: string
  }

const present = (file: CodexFile.CodexAuthFile, st: BigIntStats): OnDisk & { readonly _tag: "Present" } => ({
  _tag: "Present",
  file,
  // The file's mtime stands for when the login was obtained if `last_refresh` does not say.
  login: CodexFile.toCredential(file, OPENAI, DateTime.unsafeMake(Number(st.mtimeMs))),
  key: statKey(st)
})

const missing: OnDisk = { _tag: "Missing" }

interface Reader {
  /** The file now on disk, parsed; the cache answers while the file is unchanged. */
  readonly read: Effect.Effect<OnDisk, TokenStoreError>
  /** What we just wrote (or deleted), so our own writes cost no parse. */
  readonly remember: (disk: OnDisk) => Effect.Effect<void>
  /** Changes whenever what the cache holds does (see `TokenStore.revision`). */
  readonly revision: () => number
}

const makeReader = (
  fs: FileSystem.FileSystem,
  path: string,
  options: Pick<CodexOptions, "rereads" | "rereadDelay">
): Effect.Effect<Reader> =>
  Effect.gen(function*() {
    const cache = yield* Ref.make<Option.Option<OnDisk & { readonly _tag: "Present" }>>(Option.none())
    const rereads = Math.max(0, options.rereads ?? 3)
    const delay = Duration.decode(options.rereadDelay ?? Duration.millis(50))
    let revision = 0
    const remember = (disk: OnDisk) =>
      Ref.update(cache, (previous) => {
        const next = disk._tag === "Present" ? Option.some(disk) : Option.none()
        const same = Option.isNone(previous)
          ? Option.isNone(next)
          : Option.isSome(next) && next.value.file === previous.value.file
        if (!same) revision++
        return next
      })

    const once: Effect.Effect<Either.Either<OnDisk, CodexFile.Malformed>, StoreError | StorePermissions> = Effect.gen(function*() {
      const st = yield* lstat(path)
      if (Option.isNone(st)) {
        yield* remember(missing)
        return Either.right(missing)
      }
      if (st.value.isSymbolicLink()) {
        return yield* new StorePermissions({
          path,
          detail: "it is a symbolic link; agent-auth replaces the file atomically and would break the link (point CODEX_HOME at the real folder)"
        })
      }
      if (!st.value.isFile()) return yield* new StorePermissions({ path, detail: "it is not a regular file" })
      const key = statKey(st.value)
      const cached = yield* Ref.get(cache)
      if (Option.isSome(cached) && cached.value.key === key) return Either.right<OnDisk>(cached.value)
      const text = yield* fs.readFileString(path).pipe(
        Effect.map(Option.some),
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeed(Option.none<string>())),
        Effect.mapError(fromPlatformError(path))
      )
      if (Option.isNone(text)) {
        yield* remember(missing)
        return Either.right(missing)
      }
      const parsed = CodexFile.parse(text.value)
      if (Either.isLeft(parsed)) return Either.left(parsed.left)
      const disk = present(parsed.right, st.value)
      yield* remember(disk)
      return Either.right<OnDisk>(disk)
    })

    const read: Effect.Effect<OnDisk, TokenStoreError> = Effect.gen(function*() {
      for (let attempt = 0;; attempt++) {
        const result = yield* once
        if (Either.isRight(result)) return result.right
        if (attempt >= rereads) {
          const { field, reason } = result.left
          return yield* new StoreCorrupted({
            path,
            reason: `${field === "(file)" ? "" : `${field}: `}${reason}, so Codex cannot read it either; fix it or remove it (\`codex logout\`)`
          })
        }
        // Codex writes in place: a read between its truncate and its write sees a partial file.
        yield* Effect.sleep(delay)
      }
    })

    return { read, remember, revision: () => revision }
  })

/** The login a Codex file holds, read once (for `import codex`): `Missing`, or the credential if any. */
export const readLogin = (
  path: string,
  options: Pick<CodexOptions, "rereads" | "rereadDelay"> = {}
): Effect.Effect<
  { readonly _tag: "Missing" } | { readonly _tag: "Present"; readonly credential: Option.Option<Domain.StoredCredential> },
  TokenStoreError,
  FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const reader = yield* makeReader(fs, path, options)
    const disk = yield* reader.read
    return disk._tag === "Missing"
      ? { _tag: "Missing" as const }
      : { _tag: "Present" as const, credential: disk.login }
  })

// ---------------------------------------------------------------------------------------
// the store

const onlyOpenAi = (path: string, provider: string) =>
  new StoreError({
    path,
    reason: `the Codex store holds only the ${OPENAI} login, not ${provider} (AGENT_AUTH_STORE=codex keeps other providers in credentials.json)`
  })

/** A store of the OpenAI login in Codex's auth.json alone; other providers are refused. */
export const makeCodexOnly = (
  options: CodexOptions = {}
): Effect.Effect<CodexTokenStore, ConfigInvalid, AuthConfig.AuthConfig | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const config = yield* AuthConfig.AuthConfig
    const fs = yield* FileSystem.FileSystem
    const path = NodePath.resolve(options.path ?? (yield* defaultPath))
    const dir = NodePath.dirname(path)
    // Not `auth.json.lock`: that name is Codex's (see the module comment).
    const lock = yield* FileLock.make({
      path: `${path}.agent-auth`,
      timeout: options.lockTimeout === undefined ? config.lockTimeout : Duration.decode(options.lockTimeout),
      staleAfter: Duration.decode(options.lockStaleAfter ?? Duration.seconds(30))
    })
    const reader = yield* makeReader(fs, path, options)

    // The folder is created private when missing; an existing Codex folder keeps its modes (the file is 0600 regardless).
    const makeDir = fs.makeDirectory(dir, { recursive: true, mode: 0o700 }).pipe(Effect.mapError(fromPlatformError(path)))
    const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.zipRight(makeDir, lock.withLock(effect))

    const loginOf = (disk: OnDisk): Option.Option<Domain.StoredCredential> =>
      disk._tag === "Missing" ? Option.none() : disk.login

    const matching = (disk: OnDisk, key: Domain.CredentialKey) =>
      Option.filter(loginOf(disk), (c) => c.provider === key.provider && c.account === key.account)

    const write = (file: CodexFile.CodexAuthFile) =>
      Effect.gen(function*() {
        // Under our lock, a temp file of ours (`.auth.json.<random>.tmp`) is a leftover of an
        // agent-auth killed mid-write, holding tokens. Codex's own temp files are named otherwise.
        yield* removeLeftoverTemps(fs, path)
        yield* writeAtomic(fs, path, new TextEncoder().encode(CodexFile.render(file)), path)
        const st = yield* lstat(path)
        if (Option.isSome(st)) yield* reader.remember(present(file, st.value))
      })

    /** The file with `next` stored, checked to read back as `next` (same key), as Codex and we would read it. */
    const fileWith = (disk: OnDisk, next: Domain.StoredCredential) =>
      Effect.gen(function*() {
        const previous = disk._tag === "Present" ? disk.file : CodexFile.empty
        const updated = CodexFile.withCredential(previous, next)
        if (Either.isLeft(updated)) {
          return yield* new StoreError({ path, reason: `this login cannot be kept in Codex's file: ${updated.left}` })
        }
        const back = CodexFile.toCredential(updated.right, OPENAI, next.obtainedAt)
        if (Option.isNone(back) || back.value.account !== next.account) {
          const name = Option.match(back, { onNone: () => "its own", onSome: (c) => `"${c.account}"` })
          return yield* new StoreError({
            path,
            reason: `Codex's file keeps one ${OPENAI} login under ${name} account name (the ChatGPT account id), so it cannot keep one named "${next.account}"; log in without --account, or use AGENT_AUTH_STORE=file`
          })
        }
        return updated.right
      })

    const update = <E, R>(
      key: Domain.CredentialKey,
      f: (current: Option.Option<Domain.StoredCredential>) => Effect.Effect<Option.Option<Domain.StoredCredential>, E, R>
    ) =>
      withLock(Effect.gen(function*() {
        // Afresh under the lock: what Codex or another agent-auth wrote meanwhile is seen.
        const disk = yield* reader.read
        const current = matching(disk, key)
        const next = yield* f(current)
        const unchanged = Option.isSome(next)
          ? Option.isSome(current) && next.value === current.value
          : Option.isNone(current)
        if (!unchanged) {
          if (Option.isSome(next)) {
            if (Domain.keyString(next.value) !== Domain.keyString(key)) {
              return yield* Effect.dieMessage(
                `TokenStore.modify(${Domain.keyString(key)}): f returned the credential of ${Domain.keyString(next.value)}`
              )
            }
            const updated = yield* fileWith(disk, next.value)
            // What Codex's format cannot hold (a remembered refusal) changes nothing there:
            // the file is not rewritten (a rewrite could undo a Codex write made meanwhile).
            if (disk._tag !== "Present" || CodexFile.render(updated) !== CodexFile.render(disk.file)) yield* write(updated)
          } else {
            // Logging out of the one login the file holds: Codex's own logout deletes the file.
            yield* fs.remove(path).pipe(
              Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.void),
              Effect.mapError(fromPlatformError(path))
            )
            yield* reader.remember(missing)
          }
        }
        return { before: current, after: next }
      }))

    const refuse = (provider: string) => Effect.fail(onlyOpenAi(path, provider))

    return {
      location: path,
      path,
      lockPath: lock.lockPath,
      revision: reader.revision,
      get: (key) => key.provider !== OPENAI ? Effect.succeed(Option.none()) : Effect.map(reader.read, (disk) => matching(disk, key)),
      list: (provider) =>
        provider !== undefined && provider !== OPENAI
          ? Effect.succeed([])
          : Effect.map(reader.read, (disk) => Option.toArray(loginOf(disk))),
      set: (credential) =>
        credential.provider !== OPENAI
          ? refuse(credential.provider)
          : Effect.asVoid(update(Domain.credentialKey(credential), () => Effect.succeed(Option.some(credential)))),
      remove: (key) =>
        key.provider !== OPENAI
          ? Effect.succeed(false)
          : Effect.map(update(key, () => Effect.succeed(Option.none())), (r) => Option.isSome(r.before)),
      modify: (key, f) => key.provider !== OPENAI ? refuse(key.provider) : Effect.map(update(key, f), (r) => r.after)
    } satisfies CodexTokenStore
  })

/**
 * The store of `AGENT_AUTH_STORE=codex`: OpenAI in Codex's auth.json, every other provider
 * in the file store (`credentials.json`). An OpenAI login left in credentials.json from
 * before is not used while this store is chosen.
 */
export const makeCodex = (
  options: CodexOptions = {}
): Effect.Effect<
  CodexTokenStore & { readonly file: NodeTokenStore.FileTokenStore },
  ConfigInvalid,
  AuthConfig.AuthConfig | FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const codex = yield* makeCodexOnly(options)
    const file = yield* NodeTokenStore.makeFile(options.file ?? {})
    const route = (provider: string): TokenStore.TokenStoreShape => (provider === OPENAI ? codex : file)
    return {
      location: `${codex.path} for ${OPENAI}, ${file.path} for the others`,
      path: codex.path,
      lockPath: codex.lockPath,
      file,
      // Both are counters that only grow: their sum changes whenever either does.
      revision: () => codex.revision() + file.revision(),
      get: (key) => route(key.provider).get(key),
      set: (credential) => route(credential.provider).set(credential),
      remove: (key) => route(key.provider).remove(key),
      modify: (key, f) => route(key.provider).modify(key, f),
      list: (provider) =>
        provider !== undefined
          ? route(provider).list(provider)
          : Effect.map(
            Effect.all([codex.list(OPENAI), file.list()]),
            ([mine, others]) => [...mine, ...others.filter((c) => c.provider !== OPENAI)].sort(TokenStore.compareKeys)
          )
    }
  })

/** `AGENT_AUTH_STORE=codex`: OpenAI in `$CODEX_HOME/auth.json`, the others in credentials.json. */
export const layerCodexWith = (
  options: CodexOptions
): Layer.Layer<TokenStore.TokenStore, ConfigInvalid, AuthConfig.AuthConfig | FileSystem.FileSystem> =>
  Layer.effect(TokenStore.TokenStore, makeCodex(options))

export const layerCodex: Layer.Layer<TokenStore.TokenStore, ConfigInvalid, AuthConfig.AuthConfig | FileSystem.FileSystem> =
  layerCodexWith({})

/** Only Codex's file: any provider but OpenAI is refused (`StoreError`). */
export const layerCodexOnly = (
  options: CodexOptions = {}
): Layer.Layer<TokenStore.TokenStore, ConfigInvalid, AuthConfig.AuthConfig | FileSystem.FileSystem> =>
  Layer.effect(TokenStore.TokenStore, makeCodexOnly(options))
