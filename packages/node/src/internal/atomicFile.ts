/**
 * Private files written whole: temp file (O_EXCL, 0600) in the same folder, write, fsync,
 * rename over the target, fsync the folder. A reader sees the old file or the new one,
 * never half of one, and a crash leaves at worst a stray `.tmp` file.
 */
import { SecureRandom, StoreError, StorePermissions } from "@agent-auth/core"
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option } from "effect"
import type { BigIntStats } from "node:fs"
import * as fsp from "node:fs/promises"
import * as NodePath from "node:path"

/** A platform failure as a store error; `path` is the store it concerns. */
export const fromPlatformError = (path: string) => (error: PlatformError): StoreError | StorePermissions =>
  error._tag === "SystemError" && error.reason === "PermissionDenied"
    ? new StorePermissions({ path, detail: `permission denied (${error.method} ${String(error.pathOrDescriptor ?? "")})` })
    : new StoreError({ path, reason: error.message })

const fromErrno = (path: string, target: string, syscall: string) => (cause: unknown): StoreError | StorePermissions => {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  return code === "EACCES" || code === "EPERM"
    ? new StorePermissions({ path, detail: `permission denied (${syscall} ${target})` })
    : new StoreError({ path, reason: `${syscall} ${target}: ${code ?? String(cause)}` })
}

const statWith = (call: "lstat" | "stat") =>
(target: string, path: string = target): Effect.Effect<Option.Option<BigIntStats>, StoreError | StorePermissions> =>
  Effect.tryPromise({
    try: () => fsp[call](target, { bigint: true }),
    catch: (e) => e
  }).pipe(
    Effect.map(Option.some),
    Effect.catchAll((e) =>
      (e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR"
        ? Effect.succeed(Option.none<BigIntStats>())
        : Effect.fail(fromErrno(path, target, call)(e))
    )
  )

/** `lstat` with exact (bigint) inode and nanosecond mtime; None when nothing is there. `path` names the store in errors. */
export const lstat = statWith("lstat")

/** `stat` following links (for folders, which may legitimately be links). */
export const stat = statWith("stat")

/** The permission bits of a mode. */
export const permissions = (mode: bigint | number): number => Number(mode) & 0o777

/** Whether group or others have any access. */
export const isOpenToOthers = (mode: bigint | number): boolean => (Number(mode) & 0o077) !== 0

/**
 * A folder we may tighten: ours, and not a shared one such as /tmp (sticky bit), so a
 * `path` pointed at a shared folder is reported, never chmod-ed.
 */
export const isOwnPrivateCandidate = (st: BigIntStats): boolean =>
  (typeof process.getuid !== "function" || Number(st.uid) === process.getuid()) && (Number(st.mode) & 0o1000) === 0

/** Random file-name part (uniqueness, not secrecy; O_EXCL catches the impossible clash). */
export const randomName: Effect.Effect<string> = Effect.map(SecureRandom.make.bytes(12), SecureRandom.base64url)

/** Creates `dir` (and missing parents) 0700; a folder of ours found open to others is closed to 0700. */
export const ensurePrivateDir = (
  fs: FileSystem.FileSystem,
  dir: string,
  path: string
): Effect.Effect<void, StoreError | StorePermissions> =>
  Effect.gen(function*() {
    yield* fs.makeDirectory(dir, { recursive: true, mode: 0o700 }).pipe(Effect.mapError(fromPlatformError(path)))
    const st = yield* stat(dir, path)
    if (Option.isNone(st)) return yield* Effect.fail(new StoreError({ path, reason: `the folder ${dir} vanished` }))
    if (!st.value.isDirectory()) {
      return yield* Effect.fail(new StorePermissions({ path, detail: `${dir} is not a folder` }))
    }
    if (isOpenToOthers(st.value.mode) && isOwnPrivateCandidate(st.value)) {
      yield* fs.chmod(dir, 0o700).pipe(Effect.mapError(fromPlatformError(path)))
    }
  })

/**
 * Removes the temp files `writeAtomic` leaves for `target` when its writer is killed
 * between writing and renaming (each a copy of the tokens, which `logout` would not reach).
 * Call it only holding the lock every writer of `target` takes: then no temp file is live.
 * Best effort.
 */
export const removeLeftoverTemps = (fs: FileSystem.FileSystem, target: string): Effect.Effect<void> => {
  const dir = NodePath.dirname(target)
  const prefix = `.${NodePath.basename(target)}.`
  return fs.readDirectory(dir).pipe(
    Effect.flatMap((names) =>
      Effect.forEach(
        names.filter((n) => n.startsWith(prefix) && n.endsWith(".tmp")),
        (n) => fs.remove(NodePath.join(dir, n)),
        { discard: true }
      )
    ),
    Effect.ignore
  )
}

/**
 * Replaces `target` with `data` atomically, mode 0600. The folder must exist. `path`
 * names the store in errors.
 */
export const writeAtomic = (
  fs: FileSystem.FileSystem,
  target: string,
  data: Uint8Array,
  path: string = target
): Effect.Effect<void, StoreError | StorePermissions> =>
  Effect.gen(function*() {
    const dir = NodePath.dirname(target)
    const tmp = NodePath.join(dir, `.${NodePath.basename(target)}.${yield* randomName}.tmp`)
    const removeTmp = fs.remove(tmp).pipe(Effect.ignore)
    yield* Effect.scoped(Effect.gen(function*() {
      const file = yield* fs.open(tmp, { flag: "wx", mode: 0o600 })
      yield* file.writeAll(data)
      yield* file.sync
    })).pipe(
      Effect.zipRight(fs.rename(tmp, target)),
      Effect.mapError(fromPlatformError(path)),
      Effect.onError(() => removeTmp)
    )
    // The rename is durable only once the folder's entry is on disk; best effort (not
    // every platform can open a folder).
    yield* Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (d) => d.sync)).pipe(Effect.ignore)
  })
