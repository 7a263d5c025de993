/**
 * Node `TokenStore` layers. `layerFile`, the default, keeps every credential in one file,
 * `$AGENT_AUTH_HOME/credentials.json`:
 *
 * ```json
 * { "version": 1, "credentials": [ …StoredCredential, encoded… ] }
 * ```
 *
 * Top-level fields this version does not know are kept on every rewrite (a later
 * version may add some, such as default accounts).
 *
 * - Written whole: temp file (O_EXCL, 0600) in the same folder, fsync, rename, fsync the
 *   folder; the folder is created 0700. Temp files left by a writer killed before its rename
 *   are removed by the next write. A file or folder found open to other users is
 *   reported by `inspect` / `check` and closed (0600 / 0700) by the next write.
 * - A symbolic link at the file's path is refused (`StorePermissions`).
 * - Reads are cached and revalidated by one `lstat` (inode, size, mtime): a credential
 *   read with no change on disk parses nothing.
 * - Every write (`set`, `remove`, `modify`) runs under a cross-process lock
 *   (`credentials.json.lock`, see internal/fileLock.ts) and re-reads the file first, so it
 *   sees what another process wrote. The lock is waited for up to `AuthConfig.lockTimeout`.
 * - One entry that does not decode (a field of the wrong type, a future kind of login)
 *   costs only itself: the other entries are used; it is skipped, reported once per
 *   store (a warning naming its provider/account and the `agent-auth login` that replaces
 *   it; `unreadable` lists them, for `status`) and kept in the file exactly as it was
 *   written — its own bytes, rewritten with every write — until a login of the same
 *   provider and account replaces it, or a logout of them removes it. Kept in place
 *   rather than moved to a side file: nothing new to find, to clean up or to lose.
 * - An unreadable file (not JSON, not an object with a `credentials` array, no known version) is never overwritten:
 *   the first operation that finds it — a read as well as a write — takes the lock, moves
 *   it aside to `credentials.json.corrupt-<timestamp>` and fails with `StoreCorrupted`
 *   saying where; the operations after that start a new file. A file written by a newer
 *   agent-auth (a higher version) is not corrupt: it is left in place, reported, and not
 *   written to.
 */
import { AuthConfig, Domain, StoreCorrupted, StoreError, StorePermissions, TokenStore } from "@agent-auth/core"
import type { TokenStoreError } from "@agent-auth/core"
import { FileSystem } from "@effect/platform"
import { Clock, DateTime, Duration, Effect, Either, Layer, Option, ParseResult, Ref, Schema } from "effect"
import type { BigIntStats } from "node:fs"
import * as NodePath from "node:path"
import {
  ensurePrivateDir,
  fromPlatformError,
  isOpenToOthers,
  lstat,
  permissions,
  removeLeftoverTemps,
  stat,
  writeAtomic
} from "./internal/atomicFile.js"
import * as FileLock from "./internal/fileLock.js"

/** The format version this code reads and writes. */
export const fileVersion = 1

export interface FileOptions {
  /** The credentials file; default `credentials.json` in `AuthConfig.home`. */
  readonly path?: string
  /** How long a write waits for another process's lock; default `AuthConfig.lockTimeout` (90 s). */
  readonly lockTimeout?: Duration.DurationInput
  /** A lock its holder has not touched for this long is abandoned and taken over; default 30 s. */
  readonly lockStaleAfter?: Duration.DurationInput
}

export interface FileTokenStore extends TokenStore.TokenStoreShape {
  /** The credentials file. */
  readonly path: string
  /** What is unsafe about the file and its folder right now (for `status`); empty when all is well. */
  readonly check: Effect.Effect<ReadonlyArray<string>, StoreError | StorePermissions>
  /** How many times the file has been parsed: the witness that cached reads parse nothing. */
  readonly parses: Effect.Effect<number>
  /**
   * The entries that could not be read (for `status`, which shows each): asking counts as
   * reporting them, so this store's own warning about them is not given as well.
   */
  readonly unreadable: Effect.Effect<ReadonlyArray<UnreadableEntry>, TokenStoreError>
}

/** The credentials file in a home folder. */
export const defaultPath = (home: string): string => NodePath.join(home, "credentials.json")

// ---------------------------------------------------------------------------------------
// inspect

export interface FileInspection {
  readonly path: string
  readonly exists: boolean
  readonly symlink: boolean
  /** Permission bits of the file (0o600 is right), when it exists. */
  readonly mode: number | undefined
  /** Permission bits of its folder (0o700 is right), when it exists. */
  readonly folderMode: number | undefined
  /** One sentence per problem, each saying what fixes it; empty when all is well. */
  readonly warnings: ReadonlyArray<string>
}

const octal = (mode: number) => `0${mode.toString(8).padStart(3, "0")}`

/** The file's and folder's safety, for `status`; reads metadata only. */
export const inspect = (path: string): Effect.Effect<FileInspection, StoreError | StorePermissions> =>
  Effect.gen(function*() {
    const dir = NodePath.dirname(path)
    const file = yield* lstat(path)
    const folder = yield* stat(dir, path)
    const warnings: Array<string> = []
    const uid = typeof process.getuid === "function" ? process.getuid() : undefined
    if (Option.isSome(file)) {
      const st = file.value
      if (st.isSymbolicLink()) {
        warnings.push(`${path} is a symbolic link; agent-auth refuses to use it (replace it with the file itself)`)
      } else {
        if (isOpenToOthers(st.mode)) {
          warnings.push(
            `${path} is accessible to other users (mode ${octal(permissions(st.mode))}); the next write makes it 0600, or run \`chmod 600 ${path}\``
          )
        }
        if (uid !== undefined && Number(st.uid) !== uid) warnings.push(`${path} belongs to another user (uid ${st.uid})`)
      }
    }
    if (Option.isSome(folder) && isOpenToOthers(folder.value.mode)) {
      warnings.push(
        `${dir} is accessible to other users (mode ${octal(permissions(folder.value.mode))}); the next write makes it 0700, or run \`chmod 700 ${dir}\``
      )
    }
    return {
      path,
      exists: Option.isSome(file),
      symlink: Option.isSome(file) && file.value.isSymbolicLink(),
      mode: Option.isSome(file) ? permissions(file.value.mode) : undefined,
      folderMode: Option.isSome(folder) ? permissions(folder.value.mode) : undefined,
      warnings
    }
  })

// ---------------------------------------------------------------------------------------
// the document

interface Doc {
  readonly credentials: ReadonlyMap<string, Domain.StoredCredential>
  /** Top-level fields other than `version` and `credentials`, kept as they were. */
  readonly extra: Readonly<Record<string, unknown>>
  /** Entries that did not decode: skipped, and written back as they were. */
  readonly unreadable: ReadonlyArray<UnreadableEntry>
}

/** A stored entry that does not decode. Its text is never shown (it may hold a secret). */
export interface UnreadableEntry {
  /** `provider/account`, when the entry names both (as strings). */
  readonly key: string | undefined
  readonly provider: string | undefined
  readonly account: string | undefined
  /** It says it is an API key (`"_tag": "ApiKeyCredential"`): `login --with-api-key` replaces it. */
  readonly apiKey: boolean
  /** Where it failed, as `credentials[2].tokens.expiresAt does not match the schema`. */
  readonly reason: string
  /** The entry's own JSON text, exactly as it was in the file. */
  readonly raw: string
}

/** What replaces an unreadable entry, in words a person can act on. */
export const unreadableEntryFix = (e: UnreadableEntry): string =>
  e.provider !== undefined && e.account !== undefined
    ? `\`agent-auth login ${e.provider}${e.apiKey ? " --with-api-key" : ""} --account ${e.account}\` replaces it, ` +
      `\`agent-auth logout ${e.provider} --account ${e.account}\` removes it`
    : "it names no provider and account: remove it from the file by hand"

/** One line about an unreadable entry (no content of it). */
export const unreadableEntryMessage = (path: string, e: UnreadableEntry): string =>
  `agent-auth: the stored login ${e.key ?? "(unnamed)"} in ${path} could not be read (${e.reason}); it is kept in the file and skipped: ${unreadableEntryFix(e)}.`

const emptyDoc: Doc = { credentials: new Map(), extra: {}, unreadable: [] }

interface Unreadable {
  readonly reason: string
  /** False for a file of a newer version: not ours to move. */
  readonly moveAside: boolean
  /** The format version of a file written by a newer agent-auth. */
  readonly newerVersion?: number
}

const decodeCredential = Schema.decodeUnknownEither(Domain.StoredCredential, { errors: "first" })
const encodeCredentials = Schema.encodeEither(Schema.Array(Domain.StoredCredential))

/** Where a decode failed, as `credentials[2].tokens.expiresAt` (never the value: it may be a secret). */
const issuePath = (index: number, error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  return `credentials[${index}]` + (issue?.path ?? []).map((p) => typeof p === "number" ? `[${p}]` : `.${String(p)}`).join("")
}

/** The end of the JSON value starting at `i` in valid JSON text (strings' escapes and brackets respected). */
const valueEnd = (text: string, i: number): number => {
  let depth = 0
  for (let j = i; j < text.length; j++) {
    const c = text[j]!
    if (c === '"') {
      for (j++; text[j] !== '"'; j++) if (text[j] === "\\") j++
      if (depth === 0) return j + 1
    } else if (c === "{" || c === "[") depth++
    else if (depth === 0 && /[,\]}\s]/.test(c)) return j // the end of a number, true, false or null
    else if (c === "}" || c === "]") {
      depth--
      if (depth === 0) return j + 1
    }
  }
  return text.length
}

const skipSpace = (text: string, i: number): number => {
  while (i < text.length && /\s/.test(text[i]!)) i++
  return i
}

/**
 * The text of each element of the top-level `credentials` array, in valid JSON text that
 * is an object (the last `credentials` key, as JSON.parse takes it): so an entry that does
 * not decode is written back byte for byte.
 */
const credentialTexts = (text: string): Array<string> => {
  let found: Array<string> = []
  let i = skipSpace(text, 0) + 1 // past "{"
  for (;;) {
    i = skipSpace(text, i)
    if (text[i] !== '"') return found
    const keyEnd = valueEnd(text, i)
    const key = JSON.parse(text.slice(i, keyEnd)) as string
    i = skipSpace(text, keyEnd) + 1 // past ":"
    const start = skipSpace(text, i)
    const end = valueEnd(text, start)
    if (key === "credentials" && text[start] === "[") {
      found = []
      let j = start + 1
      for (;;) {
        j = skipSpace(text, j)
        if (text[j] === "]") break
        const e = valueEnd(text, j)
        found.push(text.slice(j, e))
        j = skipSpace(text, e)
        if (text[j] === ",") j++
      }
    }
    i = skipSpace(text, end)
    if (text[i] === ",") i++
  }
}

const stringField = (entry: unknown, field: string): string | undefined => {
  const v = typeof entry === "object" && entry !== null ? (entry as Record<string, unknown>)[field] : undefined
  return typeof v === "string" ? v : undefined
}

/** Parses the file's text. Error reasons never quote the content (it holds secrets). */
const parseDocument = (text: string): Either.Either<Doc, Unreadable> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return Either.left({ reason: "it is not JSON", moveAside: true })
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left({ reason: "it is not a JSON object", moveAside: true })
  }
  const { credentials, version, ...extra } = json as Record<string, unknown>
  if (typeof version === "number" && Number.isInteger(version) && version > fileVersion) {
    return Either.left({
      reason: `it was written by a newer agent-auth (format version ${version}); upgrade agent-auth to use it`,
      moveAside: false,
      newerVersion: version
    })
  }
  if (version !== fileVersion) {
    return Either.left({ reason: "its format version is missing or unknown", moveAside: true })
  }
  if (!Array.isArray(credentials)) {
    return Either.left({ reason: "it has no credentials array", moveAside: true })
  }
  // Each entry on its own: one that does not decode is kept aside, the others are used.
  const good = new Map<string, Domain.StoredCredential>()
  const unreadable: Array<UnreadableEntry> = []
  let texts: Array<string> | undefined
  credentials.forEach((entry: unknown, index) => {
    const decoded = decodeCredential(entry)
    if (Either.isRight(decoded)) return void good.set(Domain.keyString(decoded.right), decoded.right)
    texts ??= credentialTexts(text)
    const provider = stringField(entry, "provider")
    const account = stringField(entry, "account")
    unreadable.push({
      key: provider !== undefined && account !== undefined ? Domain.keyString({ provider, account }) : undefined,
      provider,
      account,
      apiKey: stringField(entry, "_tag") === "ApiKeyCredential",
      reason: `${issuePath(index, decoded.left)} does not match the schema`,
      // Should the scan ever disagree with JSON.parse, the parsed value (the same data) is kept instead.
      raw: texts.length === credentials.length ? texts[index]! : JSON.stringify(entry)
    })
  })
  return Either.right({ credentials: good, extra, unreadable })
}

/** The file's text for a document: sorted, so rewrites of the same content are identical; unreadable entries last, as they were. */
const renderDocument = (doc: Doc): Either.Either<string, string> => {
  const sorted = [...doc.credentials.values()].sort(TokenStore.compareKeys)
  return encodeCredentials(sorted).pipe(
    Either.map((credentials) => {
      const text = JSON.stringify({ version: fileVersion, credentials, ...doc.extra }, null, 2) + "\n"
      if (doc.unreadable.length === 0) return text
      // Spliced in as text: re-encoding would change what could not be read (numbers, key order, duplicates).
      const list = JSON.stringify(credentials, null, 2).replace(/\n/g, "\n  ")
      const kept = doc.unreadable.map((e) => e.raw).join(",\n    ")
      const withKept = credentials.length === 0 ? `[\n    ${kept}\n  ]` : `${list.slice(0, -4)},\n    ${kept}\n  ]`
      return text.replace(`"credentials": ${list}`, () => `"credentials": ${withKept}`)
    }),
    Either.mapLeft(() => "a credential could not be encoded")
  )
}

/** Identity of a file version: a rename-replaced file has a new inode, an edit a new mtime or size. */
const statKey = (st: BigIntStats) => `${st.ino}:${st.size}:${st.mtimeNs}`

// ---------------------------------------------------------------------------------------
// the store

/** A file store; touches the disk only when used. */
export const makeFile = (
  options: FileOptions = {}
): Effect.Effect<FileTokenStore, never, AuthConfig.AuthConfig | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const config = yield* AuthConfig.AuthConfig
    const fs = yield* FileSystem.FileSystem
    const path = NodePath.resolve(options.path ?? defaultPath(config.home))
    const dir = NodePath.dirname(path)
    const lock = yield* FileLock.make({
      path,
      timeout: options.lockTimeout === undefined ? config.lockTimeout : Duration.decode(options.lockTimeout),
      staleAfter: Duration.decode(options.lockStaleAfter ?? Duration.seconds(30))
    })
    // The lock file lives beside the credentials: the folder must exist before the lock.
    const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      fs.makeDirectory(dir, { recursive: true, mode: 0o700 }).pipe(
        Effect.mapError(fromPlatformError(path)),
        Effect.zipRight(lock.withLock(effect))
      )
    const cache = yield* Ref.make<Option.Option<{ readonly key: string; readonly doc: Doc }>>(Option.none())
    // `revision()`: changes whenever the cached document does (our write, or a read that found another's).
    let revision = 0
    const remember = (next: Option.Option<{ readonly key: string; readonly doc: Doc }>) =>
      Ref.update(cache, (previous) => {
        const same = Option.isNone(previous)
          ? Option.isNone(next)
          : Option.isSome(next) && next.value.doc === previous.value.doc
        if (!same) revision++
        return next
      })
    const parseCount = yield* Ref.make(0)

    type Loaded = Either.Either<Doc, Unreadable & { readonly key: string }>

    /** The document now on disk: from the cache when the file has not changed since. */
    const load: Effect.Effect<Loaded, StoreError | StorePermissions> = Effect.gen(function*() {
      const st = yield* lstat(path)
      if (Option.isNone(st)) {
        yield* remember(Option.none())
        return Either.right(emptyDoc)
      }
      if (st.value.isSymbolicLink()) {
        return yield* Effect.fail(
          new StorePermissions({ path, detail: "it is a symbolic link (replace the link with the file itself)" })
        )
      }
      if (!st.value.isFile()) {
        return yield* Effect.fail(new StorePermissions({ path, detail: "it is not a regular file" }))
      }
      const key = statKey(st.value)
      const cached = yield* Ref.get(cache)
      if (Option.isSome(cached) && cached.value.key === key) return Either.right(cached.value.doc)
      const text = yield* fs.readFileString(path).pipe(
        Effect.map(Option.some),
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "NotFound",
          () => Effect.succeed(Option.none<string>())
        ),
        Effect.mapError(fromPlatformError(path))
      )
      if (Option.isNone(text)) return Either.right(emptyDoc) // removed between lstat and read
      yield* Ref.update(parseCount, (n) => n + 1)
      const parsed = parseDocument(text.value)
      if (Either.isRight(parsed)) yield* remember(Option.some({ key, doc: parsed.right }))
      return Either.mapLeft(parsed, (u) => ({ ...u, key }))
    })

    /** Moves an unreadable file aside (lock held) and fails saying where it went. */
    const setAside = (unreadable: Unreadable & { readonly key: string }) =>
      Effect.gen(function*() {
        const fail = (movedTo?: string) =>
          Effect.fail(
            new StoreCorrupted({
              path,
              reason: unreadable.reason,
              ...(movedTo === undefined ? {} : { movedTo }),
              ...(unreadable.newerVersion === undefined ? {} : { newerVersion: unreadable.newerVersion })
            })
          )
        if (!unreadable.moveAside) return yield* fail()
        // Only the file judged unreadable is moved, not one written since by a process not using the lock.
        const st = yield* lstat(path)
        if (Option.isNone(st) || statKey(st.value) !== unreadable.key) return yield* fail()
        const stamp = DateTime.formatIso(DateTime.unsafeMake(yield* Clock.currentTimeMillis)).replace(/[-:.]/g, "")
        let target = `${path}.corrupt-${stamp}`
        for (let n = 2; yield* fs.exists(target).pipe(Effect.mapError(fromPlatformError(path))); n++) {
          target = `${path}.corrupt-${stamp}-${n}`
        }
        yield* fs.rename(path, target).pipe(Effect.mapError(fromPlatformError(path)))
        // It holds secrets: private, whatever its mode was.
        yield* fs.chmod(target, 0o600).pipe(Effect.ignore)
        yield* remember(Option.none())
        // A trace only: the StoreCorrupted failure below says the same to the person, once.
        yield* Effect.logDebug(`agent-auth: ${path} could not be read (${unreadable.reason}); moved to ${target}`)
        return yield* fail(target)
      })

    // Unreadable entries already reported by this store (by their text): each is reported once.
    const reported = new Set<string>()
    const markReported = (doc: Doc) =>
      Effect.sync(() => doc.unreadable.filter((e) => !reported.has(e.raw) && reported.add(e.raw) !== undefined))
    const reportUnreadable = (doc: Doc) =>
      Effect.flatMap(markReported(doc), (fresh) =>
        Effect.forEach(fresh, (e) => Effect.logWarning(unreadableEntryMessage(path, e)), { discard: true }))

    /** The current document, the lock held: an unreadable file is set aside. */
    const loadLocked: Effect.Effect<Doc, TokenStoreError> = Effect.flatMap(load, (loaded) =>
      Either.isRight(loaded) ? Effect.tap(Effect.succeed(loaded.right), reportUnreadable) : setAside(loaded.left))

    /** The current document for a read, without reporting: the lock is taken only to set an unreadable file aside. */
    const readQuietly: Effect.Effect<Doc, TokenStoreError> = Effect.flatMap(load, (loaded) =>
      Either.isRight(loaded)
        ? Effect.succeed(loaded.right)
        : withLock(loadLocked).pipe(
          Effect.catchTag("StoreLocked", () => Effect.fail(new StoreCorrupted({ path, reason: loaded.left.reason })))
        ))

    const read: Effect.Effect<Doc, TokenStoreError> = Effect.tap(readQuietly, reportUnreadable)

    const write = (doc: Doc) =>
      Effect.gen(function*() {
        const text = renderDocument(doc)
        if (Either.isLeft(text)) return yield* Effect.fail(new StoreError({ path, reason: text.left }))
        yield* ensurePrivateDir(fs, dir, path)
        // Under the lock every temp file of ours is a leftover of a writer killed mid-write.
        yield* removeLeftoverTemps(fs, path)
        yield* writeAtomic(fs, path, new TextEncoder().encode(text.right), path)
        // Remember what we wrote under the new file's identity: our own writes cost no parse.
        const st = yield* lstat(path)
        yield* remember(Option.map(st, (s) => ({ key: statKey(s), doc })))
      })

    /** `modify`, also answering what was there before. */
    const update = <E, R>(
      key: Domain.CredentialKey,
      f: (current: Option.Option<Domain.StoredCredential>) => Effect.Effect<Option.Option<Domain.StoredCredential>, E, R>
    ) =>
      withLock(Effect.gen(function*() {
        const doc = yield* loadLocked
        const id = Domain.keyString(key)
        const current = Option.fromNullable(doc.credentials.get(id))
        const next = yield* f(current)
        // A login or logout of this key replaces or removes an entry of it that could not be read.
        const unreadable = doc.unreadable.filter((e) => e.key !== id)
        const dropped = unreadable.length !== doc.unreadable.length
        const unchanged = !dropped && (Option.isSome(next)
          ? Option.isSome(current) && next.value === current.value
          : Option.isNone(current))
        if (!unchanged) {
          if (Option.isSome(next) && Domain.keyString(next.value) !== id) {
            return yield* Effect.dieMessage(
              `TokenStore.modify(${id}): f returned the credential of ${Domain.keyString(next.value)}`
            )
          }
          const credentials = new Map(doc.credentials)
          if (Option.isSome(next)) credentials.set(id, next.value)
          else credentials.delete(id)
          yield* write({ credentials, extra: doc.extra, unreadable })
        }
        return { before: current, after: next, dropped }
      }))

    return {
      location: path,
      path,
      revision: () => revision,
      check: Effect.map(inspect(path), (i) => i.warnings),
      parses: Ref.get(parseCount),
      unreadable: Effect.tap(readQuietly, markReported).pipe(Effect.map((doc) => doc.unreadable)),
      get: (key) => Effect.map(read, (doc) => Option.fromNullable(doc.credentials.get(Domain.keyString(key)))),
      list: (provider) =>
        Effect.map(read, (doc) =>
          [...doc.credentials.values()]
            .filter((c) => provider === undefined || c.provider === provider)
            .sort(TokenStore.compareKeys)),
      set: (credential) => Effect.asVoid(update(Domain.credentialKey(credential), () => Effect.succeed(Option.some(credential)))),
      remove: (key) => Effect.map(update(key, () => Effect.succeed(Option.none())), (r) => Option.isSome(r.before) || r.dropped),
      modify: (key, f) => Effect.map(update(key, f), (r) => r.after)
    } satisfies FileTokenStore
  })

/** A file store with options (another path, lock timings). */
export const layerFileWith = (
  options: FileOptions
): Layer.Layer<TokenStore.TokenStore, never, AuthConfig.AuthConfig | FileSystem.FileSystem> =>
  Layer.effect(TokenStore.TokenStore, makeFile(options))

/** The default store: `credentials.json` in the agent-auth home. */
export const layerFile: Layer.Layer<TokenStore.TokenStore, never, AuthConfig.AuthConfig | FileSystem.FileSystem> =
  layerFileWith({})
