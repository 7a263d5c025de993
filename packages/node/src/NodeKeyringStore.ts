/**
 * `layerKeyring`: credentials in the system keychain (`@napi-rs/keyring`: Keychain on
 * macOS, Credential Manager on Windows, Secret Service on Linux — pinned there, never the
 * kernel keyutils fallback that forgets everything at reboot).
 *
 * - One keychain item per credential: service `agent-auth:<home>`, user name
 *   `<provider>/<account>`, the password the credential's JSON (secrets included).
 * - Beside it, in `AGENT_AUTH_HOME`, only what is not secret: the index `keyring.json`
 *   (`{ version, service, items: [{ provider, account, type, stamp }] }`, 0600, written
 *   atomically) and its lock `keyring.json.lock` (the file store's cross-process lock), so
 *   `modify` is atomic across processes as with the file store. Every write gives the
 *   item a new `stamp`: a reader that finds the stamp it read before reuses the credential
 *   it holds without asking the keychain again (`revision()` changes when the index does).
 * - Every keychain call runs in a helper process with a time limit (internal/keychainHost.ts):
 *   a hung D-Bus fails the call with `StoreError` naming the keychain; it never freezes
 *   the caller. The keychain is touched only when a secret is read or written: an empty
 *   index answers `list` and `get` from the file alone.
 * - Logins found in `credentials.json` (the file store) are moved into the keychain on the
 *   first use of the store, and removed from the file, with one line saying so.
 */
import { AuthConfig, Domain, StoreCorrupted, StoreError, TokenStore } from "@agent-auth/core"
import type { TokenStoreError } from "@agent-auth/core"
import { FileSystem } from "@effect/platform"
import { Context, Duration, Effect, Either, Layer, Option, Schema, type Scope } from "effect"
import type { BigIntStats } from "node:fs"
import * as NodePath from "node:path"
import { ensurePrivateDir, fromPlatformError, lstat, randomName, writeAtomic } from "./internal/atomicFile.js"
import * as FileLock from "./internal/fileLock.js"
import * as KeychainHost from "./internal/keychainHost.js"
import * as NodeTokenStore from "./NodeTokenStore.js"

export { keychainName } from "./internal/keychainHost.js"

export interface KeyringOptions {
  /** The index; default `keyring.json` in `AuthConfig.home`. */
  readonly indexPath?: string | undefined
  /** The keychain service of new items; default `agent-auth:<home>`. */
  readonly service?: string | undefined
  /** Move logins out of this file store; default the home's `credentials.json`; false: never. */
  readonly migrateFrom?: string | false | undefined
  /** How long the keychain has to answer its first call (3 s) and later ones (10 s). */
  readonly probeTimeout?: Duration.DurationInput | undefined
  readonly callTimeout?: Duration.DurationInput | undefined
  /** How long a write waits for another process's lock; default `AuthConfig.lockTimeout`. */
  readonly lockTimeout?: Duration.DurationInput | undefined
}

export interface KeyringTokenStore extends TokenStore.TokenStoreShape {
  readonly indexPath: string
  /** The keychain service its items are under (what `secret-tool search service …` finds). */
  readonly service: Effect.Effect<string, TokenStoreError>
  /** Succeeds when the keychain answers (3 s at most). */
  readonly probe: Effect.Effect<void, StoreError>
  /** Whether the index lists this key (no keychain call). */
  readonly holds: (key: Domain.CredentialKey) => Effect.Effect<boolean, TokenStoreError>
  /** The same, from the index as last read (synchronous; false before any read). */
  readonly heldLastSeen: (key: Domain.CredentialKey) => boolean
}

/**
 * By when the keychain's first answer must come (epoch milliseconds), and how a message
 * says it. Unset (a long-running process), the keychain has 3 s from when it is asked. A
 * command-line program sets a deadline from its own start (the CLI: 2.5 s after it, see
 * `commandDeadline`), so a command that meets a keychain that never answers ends within
 * 3 s of its start whatever its start-up cost; the keychain still gets at least 1 s once
 * its helper is ready, and never more than 3 s.
 */
export class ProbeDeadline extends Context.Reference<ProbeDeadline>()("@agent-auth/node/NodeKeyringStore/ProbeDeadline", {
  defaultValue: (): { readonly deadline: { readonly at: number; readonly says: string } | undefined } => ({
    deadline: undefined
  })
}) {}

/**
 * The CLI's deadline: 2.5 s after the process started, leaving half a second of the 3 s a
 * command may spend on a missing keychain to write the file and exit on a loaded machine.
 */
export const commandDeadline = (
  startedAt: number = performance.timeOrigin
): { readonly at: number; readonly says: string } => ({ at: startedAt + 2500, says: "2.5s of the command's start" })

export const defaultIndexPath = (home: string): string => NodePath.join(home, "keyring.json")
export const defaultService = (home: string): string => `agent-auth:${NodePath.resolve(home)}`

/** What `location` says: the keychain, and where its index is. */
export const locationOf = (indexPath: string): string => `${KeychainHost.keychainName} (index ${indexPath})`

// ---------------------------------------------------------------------------------------
// the index

const IndexItem = Schema.Struct({
  provider: Schema.String,
  account: Schema.String,
  type: Schema.Literal("oauth", "api_key"),
  stamp: Schema.String
})
type IndexItem = typeof IndexItem.Type

const IndexFile = Schema.Struct({
  version: Schema.Literal(1),
  service: Schema.String,
  items: Schema.Array(IndexItem)
})

interface Index {
  readonly service: string | undefined
  readonly items: ReadonlyMap<string, IndexItem>
}

const emptyIndex: Index = { service: undefined, items: new Map() }
const decodeIndex = Schema.decodeUnknownEither(Schema.parseJson(IndexFile))
const encodeStored = Schema.encodeSync(Schema.parseJson(Domain.StoredCredential))
const decodeStored = Schema.decodeUnknownEither(Schema.parseJson(Domain.StoredCredential))

const statKey = (st: BigIntStats) => `${st.ino}:${st.size}:${st.mtimeNs}`

// ---------------------------------------------------------------------------------------
// the store

export const makeKeyring = (
  options: KeyringOptions = {}
): Effect.Effect<KeyringTokenStore, never, AuthConfig.AuthConfig | FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* AuthConfig.AuthConfig
    const fs = yield* FileSystem.FileSystem
    const indexPath = NodePath.resolve(options.indexPath ?? defaultIndexPath(config.home))
    const dir = NodePath.dirname(indexPath)
    const newService = options.service ?? defaultService(config.home)
    const host = yield* KeychainHost.make({
      probeTimeout: options.probeTimeout,
      callTimeout: options.callTimeout,
      deadline: (yield* ProbeDeadline).deadline
    })
    const lock = yield* FileLock.make({
      path: indexPath,
      timeout: options.lockTimeout === undefined ? config.lockTimeout : Duration.decode(options.lockTimeout),
      staleAfter: Duration.seconds(30)
    })
    const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      ensurePrivateDir(fs, dir, indexPath).pipe(Effect.zipRight(lock.withLock(effect)))

    let revision = 0
    let cached: { readonly key: string; readonly index: Index } | undefined
    const remember = (next: { readonly key: string; readonly index: Index } | undefined) => {
      if ((cached?.index ?? emptyIndex) !== (next?.index ?? emptyIndex)) revision++
      cached = next
    }
    /** Credentials read from the keychain, by key, with the stamp they were read under. */
    const secrets = new Map<string, { readonly stamp: string; readonly credential: Domain.StoredCredential }>()

    /** The index on disk (one `lstat` when unchanged). */
    const loadIndex: Effect.Effect<Index, TokenStoreError> = Effect.gen(function*() {
      const st = yield* lstat(indexPath)
      if (Option.isNone(st)) {
        if (cached !== undefined) remember(undefined)
        return emptyIndex
      }
      const key = statKey(st.value)
      if (cached !== undefined && cached.key === key) return cached.index
      const text = yield* fs.readFileString(indexPath).pipe(Effect.mapError(fromPlatformError(indexPath)))
      const parsed = decodeIndex(text)
      if (Either.isLeft(parsed)) {
        return yield* new StoreCorrupted({ path: indexPath, reason: "it is not an agent-auth keychain index" })
      }
      const index: Index = {
        service: parsed.right.service,
        items: new Map(parsed.right.items.map((i) => [Domain.keyString(i), i]))
      }
      remember({ key, index })
      return index
    })

    const writeIndex = (index: Index) =>
      Effect.gen(function*() {
        const items = [...index.items.values()].sort(TokenStore.compareKeys)
        const text = JSON.stringify({ version: 1, service: index.service ?? newService, items }, null, 2) + "\n"
        yield* writeAtomic(fs, indexPath, new TextEncoder().encode(text), indexPath)
        const st = yield* lstat(indexPath)
        remember(Option.isSome(st) ? { key: statKey(st.value), index } : undefined)
      })

    const serviceOf = (index: Index) => index.service ?? newService

    /** The credential an index item names, from memory when its stamp is the one read before. */
    const read = (index: Index, item: IndexItem): Effect.Effect<Option.Option<Domain.StoredCredential>, StoreError> => {
      const id = Domain.keyString(item)
      const known = secrets.get(id)
      if (known !== undefined && known.stamp === item.stamp) return Effect.succeed(Option.some(known.credential))
      return Effect.flatMap(host.get(serviceOf(index), id), (text) => {
        // Deleted from the keychain by someone else (a keychain manager): nothing is stored.
        if (text === null) return Effect.succeed(Option.none())
        const decoded = decodeStored(text)
        if (Either.isLeft(decoded) || Domain.keyString(decoded.right) !== id) {
          return Effect.fail(
            new StoreError({ path: KeychainHost.keychainName, reason: `its item ${id} is not a credential agent-auth wrote` })
          )
        }
        secrets.set(id, { stamp: item.stamp, credential: decoded.right })
        return Effect.succeed(Option.some(decoded.right))
      })
    }

    /** Writes (or with None removes) one credential; the lock is held and `index` is current. */
    const put = (index: Index, id: string, next: Option.Option<Domain.StoredCredential>) =>
      Effect.gen(function*() {
        const items = new Map(index.items)
        if (Option.isSome(next)) {
          const credential = next.value
          yield* host.set(serviceOf(index), id, encodeStored(credential))
          const stamp = yield* randomName
          items.set(id, {
            provider: credential.provider,
            account: credential.account,
            type: credential._tag === "OAuthCredential" ? "oauth" : "api_key",
            stamp
          })
          secrets.set(id, { stamp, credential })
        } else {
          yield* host.remove(serviceOf(index), id)
          items.delete(id)
          secrets.delete(id)
        }
        yield* writeIndex({ service: serviceOf(index), items })
      })

    const update = <E, R>(
      key: Domain.CredentialKey,
      f: (current: Option.Option<Domain.StoredCredential>) => Effect.Effect<Option.Option<Domain.StoredCredential>, E, R>
    ) =>
      withLock(Effect.gen(function*() {
        const index = yield* loadIndex
        const id = Domain.keyString(key)
        const item = index.items.get(id)
        const current = item === undefined ? Option.none() : yield* read(index, item)
        const next = yield* f(current)
        const unchanged = Option.isSome(next)
          ? Option.isSome(current) && next.value === current.value
          : Option.isNone(current) && item === undefined
        if (!unchanged) {
          if (Option.isSome(next) && Domain.keyString(next.value) !== id) {
            return yield* Effect.dieMessage(`TokenStore.modify(${id}): f returned the credential of ${Domain.keyString(next.value)}`)
          }
          yield* put(index, id, next)
        }
        return { before: current, after: next }
      }))

    // Logins left in credentials.json by the file store move in once, on first use.
    const migrateFrom = options.migrateFrom === undefined ? NodeTokenStore.defaultPath(config.home) : options.migrateFrom
    const migrate: Effect.Effect<void, TokenStoreError> = migrateFrom === false
      ? Effect.void
      : Effect.gen(function*() {
        if (Option.isNone(yield* lstat(migrateFrom))) return
        const file = yield* NodeTokenStore.makeFile({ path: migrateFrom })
        const found = yield* file.list()
        if (found.length === 0) return
        for (const credential of found) {
          const key = Domain.credentialKey(credential)
          // Into the keychain first, then out of the file: a failure in between leaves a copy, never nothing.
          yield* update(key, () => Effect.succeed(Option.some(credential)))
          yield* file.modify(key, (current) =>
            Effect.succeed(Option.isSome(current) && current.value === credential ? Option.none() : current))
        }
        yield* Effect.logWarning(
          `agent-auth: moved ${found.length} credential(s) from ${migrateFrom} into ${KeychainHost.keychainName}; their secrets are no longer in the file`
        )
      }).pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.provideService(AuthConfig.AuthConfig, config))
    // Done once it has succeeded: a keychain that failed once (a locked keyring) is asked again next time.
    let migrated = false
    const ready = Effect.suspend(() => migrated ? Effect.void : Effect.tap(migrate, () => void (migrated = true)))
    const once = <A, E>(effect: Effect.Effect<A, E>) => Effect.zipRight(ready, effect)

    const get = (key: Domain.CredentialKey) =>
      once(Effect.flatMap(loadIndex, (index) => {
        const item = index.items.get(Domain.keyString(key))
        return item === undefined ? Effect.succeed(Option.none()) : read(index, item)
      }))

    return {
      location: locationOf(indexPath),
      indexPath,
      service: Effect.map(loadIndex, serviceOf),
      probe: host.probe,
      holds: (key) => Effect.map(loadIndex, (index) => index.items.has(Domain.keyString(key))),
      heldLastSeen: (key) => cached?.index.items.has(Domain.keyString(key)) ?? false,
      revision: () => revision,
      get,
      list: (provider) =>
        once(Effect.gen(function*() {
          const index = yield* loadIndex
          const items = [...index.items.values()]
            .filter((i) => provider === undefined || i.provider === provider)
            .sort(TokenStore.compareKeys)
          const found = yield* Effect.forEach(items, (item) => read(index, item))
          return found.flatMap(Option.toArray)
        })),
      set: (credential) => once(Effect.asVoid(update(Domain.credentialKey(credential), () => Effect.succeed(Option.some(credential))))),
      remove: (key) => once(Effect.map(update(key, () => Effect.succeed(Option.none())), (r) => Option.isSome(r.before))),
      modify: (key, f) => Effect.zipRight(ready, Effect.map(update(key, f), (r) => r.after))
    } satisfies KeyringTokenStore
  })

// ---------------------------------------------------------------------------------------
// auto

/** The line `auto` writes (once a process) when a new secret goes to the file instead. */
export const fallbackWarning = (reason: string, path: string): string =>
  `agent-auth: the system keychain is not available (${reason}); stored in plain text at ${path}, mode 0600`

/**
 * `AGENT_AUTH_STORE=auto` (the default): a new secret goes to the keychain when it answers
 * the probe, else to `credentials.json` with one warning line, as `gh` does. A credential
 * stays where it is (a refresh of a login in the file rewrites the file); reads look in
 * the file, then in the keychain's index, so a command that finds nothing, or finds its
 * credential in the file, never starts the keychain helper. The probe runs once a process,
 * and only when a secret must be placed; its answer is kept in `keychain-probe.json`, from
 * which `status` says why credentials in the file are not in the keychain without probing.
 */
/** The `auto` store; `check` is the file's (what `status` reports about credentials.json). */
export interface AutoTokenStore extends TokenStore.TokenStoreShape {
  readonly check: NodeTokenStore.FileTokenStore["check"]
  /** The file's entries it could not read (what `status` shows as ✗). */
  readonly unreadable: NodeTokenStore.FileTokenStore["unreadable"]
  /** The credentials file (what `locationOf` says for a credential kept there). */
  readonly filePath: string
  /**
   * Why credentials in the file are not in the keychain, for `status`: never waits and never
   * starts the keychain helper (see `keychainNotUsed`).
   */
  readonly keychainNotUsed: Effect.Effect<KeychainNotUsed>
}

/** Why the keychain does not hold what is in the file. */
export interface KeychainNotUsed {
  readonly reason: string
  /** When the probe that failed with `reason` ran (a secret was stored); undefined when the reason is known now. */
  readonly checkedAt: Date | undefined
}

/**
 * The probe's last answer, kept in the home by `auto` when it places a secret
 * (`keychain-probe.json`, not secret): `status` reports it without probing again, which
 * would cost it up to 3 s on a keychain that never answers.
 */
export const probeRecordPath = (home: string): string => NodePath.join(home, "keychain-probe.json")

const ProbeRecord = Schema.Struct({
  version: Schema.Literal(1),
  at: Schema.String,
  available: Schema.Boolean,
  reason: Schema.optional(Schema.String)
})
const decodeProbeRecord = Schema.decodeUnknownOption(Schema.parseJson(ProbeRecord))

/**
 * Why credentials in the file are not in the keychain, from what costs nothing: no session
 * bus now (known at once), else the probe's last answer when a secret was stored, else that
 * they were stored without trying it. Never the probe itself: `status` must not wait.
 */
export const keychainNotUsed = (
  fs: FileSystem.FileSystem,
  home: string
): Effect.Effect<KeychainNotUsed> =>
  Effect.gen(function*() {
    const noBus = KeychainHost.missingBus()
    if (noBus !== undefined) return { reason: noBus, checkedAt: undefined }
    const text = yield* fs.readFileString(probeRecordPath(home)).pipe(Effect.option)
    const record = Option.flatMap(text, decodeProbeRecord)
    if (Option.isNone(record)) {
      return { reason: "they were stored without trying it (AGENT_AUTH_STORE=file, or an agent-auth before the keychain)", checkedAt: undefined }
    }
    const at = new Date(record.value.at)
    const checkedAt = Number.isNaN(at.getTime()) ? undefined : at
    return record.value.available
      ? {
        reason: `it answered when a secret was last stored${checkedAt === undefined ? "" : ` (${checkedAt.toISOString()})`}, ` +
          "but these were stored before, and a credential stays where it was stored",
        checkedAt: undefined
      }
      : { reason: record.value.reason ?? "it did not answer", checkedAt }
  })

export const makeAuto = (
  options: KeyringOptions & { readonly file?: NodeTokenStore.FileOptions | undefined } = {}
): Effect.Effect<AutoTokenStore, never, AuthConfig.AuthConfig | FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const file = yield* NodeTokenStore.makeFile(options.file ?? {})
    const keyring = yield* makeKeyring({ ...options, migrateFrom: false })
    const probe = yield* Effect.cached(Effect.either(keyring.probe))
    const config = yield* AuthConfig.AuthConfig
    const fs = yield* FileSystem.FileSystem
    let warned = false
    /**
     * The probe's answer, for `status` (once a process). Only a note: a home that cannot take
     * it cannot take the secret either, and that write says so.
     */
    let recorded = false
    const record = (answer: Either.Either<void, StoreError>) =>
      recorded ? Effect.void : Effect.gen(function*() {
        recorded = true
        const text = JSON.stringify({
          version: 1,
          at: new Date().toISOString(),
          available: Either.isRight(answer),
          ...(Either.isLeft(answer) ? { reason: answer.left.reason } : {})
        })
        const target = probeRecordPath(config.home)
        yield* ensurePrivateDir(fs, NodePath.dirname(target), target)
        yield* writeAtomic(fs, target, new TextEncoder().encode(text + "\n"))
      }).pipe(Effect.ignore)
    /** Where a new credential goes: the keychain, or the file (warning once). */
    const placeNew: Effect.Effect<TokenStore.TokenStoreShape> = Effect.flatMap(probe, (answer) => {
      if (Either.isRight(answer)) return Effect.as(record(answer), keyring as TokenStore.TokenStoreShape)
      const warn = warned ? Effect.void : Effect.logWarning(fallbackWarning(answer.left.reason, file.path))
      warned = true
      return Effect.as(Effect.zipRight(warn, record(answer)), file as TokenStore.TokenStoreShape)
    })
    /** Where the credential of `key` is now; None when nowhere. */
    const whereIs = (key: Domain.CredentialKey) =>
      Effect.gen(function*() {
        if (Option.isSome(yield* file.get(key))) return Option.some<TokenStore.TokenStoreShape>(file)
        if (yield* keyring.holds(key)) return Option.some<TokenStore.TokenStoreShape>(keyring)
        return Option.none<TokenStore.TokenStoreShape>()
      })
    return {
      location: `${file.path}, or ${KeychainHost.keychainName}`,
      check: file.check,
      unreadable: file.unreadable,
      filePath: file.path,
      keychainNotUsed: keychainNotUsed(fs, config.home),
      locationOf: (key) => keyring.heldLastSeen(key) ? keyring.location : file.location,
      revision: () => file.revision() + keyring.revision(),
      get: (key) => Effect.flatMap(file.get(key), (found) => Option.isSome(found) ? Effect.succeed(found) : keyring.get(key)),
      list: (provider) =>
        Effect.gen(function*() {
          const inFile = yield* file.list(provider)
          const seen = new Set(inFile.map(Domain.keyString))
          const inKeyring = (yield* keyring.list(provider)).filter((c) => !seen.has(Domain.keyString(c)))
          return [...inFile, ...inKeyring].sort(TokenStore.compareKeys)
        }),
      set: (credential) =>
        Effect.gen(function*() {
          const key = Domain.credentialKey(credential)
          const target = yield* placeNew
          yield* target.set(credential)
          // One place only: a login that was in the file now lives in the keychain.
          if (target === keyring) yield* file.remove(key)
        }),
      remove: (key) =>
        Effect.gen(function*() {
          const fromFile = yield* file.remove(key)
          const fromKeyring = (yield* keyring.holds(key)) ? yield* keyring.remove(key) : false
          return fromFile || fromKeyring
        }),
      modify: (key, f) =>
        Effect.flatMap(whereIs(key), (found) =>
          Option.isSome(found)
            ? found.value.modify(key, f)
            : Effect.flatMap(placeNew, (target) => target.modify(key, f)))
    } satisfies AutoTokenStore
  })

export const layerAuto: Layer.Layer<TokenStore.TokenStore, never, AuthConfig.AuthConfig | FileSystem.FileSystem> = Layer
  .scoped(TokenStore.TokenStore, makeAuto())

/** The keychain store with options (another index, service, time limits). */
export const layerKeyringWith = (
  options: KeyringOptions
): Layer.Layer<TokenStore.TokenStore, never, AuthConfig.AuthConfig | FileSystem.FileSystem> =>
  Layer.scoped(TokenStore.TokenStore, makeKeyring(options))

/** `AGENT_AUTH_STORE=keyring`: the system keychain, the index and lock in the agent-auth home. */
export const layerKeyring: Layer.Layer<TokenStore.TokenStore, never, AuthConfig.AuthConfig | FileSystem.FileSystem> =
  layerKeyringWith({})

