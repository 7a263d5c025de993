/**
 * A cross-process lock: the file `<store>.lock`, created with O_EXCL, holding
 * `{ pid, host, pidns, createdAt, nonce }` (`pidns`: the holder's PID namespace, the inode
 * of `/proc/self/ns/pid`, where there is one).
 *
 * - Fibers of one process queue on a semaphore first, so only one of them polls the file.
 * - A busy lock is polled with a jittered, capped exponential backoff until `timeout`
 *   (by Effect's Clock), then `StoreLocked` names the holder's pid.
 * - The holder touches the file's mtime every `staleAfter / 6`, so a lock is stale when its
 *   holder process is gone (same host and same PID namespace, `kill(pid, 0)` says ESRCH —
 *   a container sharing the hostname but not the PID namespace has pids that mean nothing
 *   here, so its holder is judged by the heartbeat alone), it went untouched for
 *   `staleAfter` (a holder on another host, or a pid reused since), or it still names no
 *   holder after `unidentifiedAfter` (its creator was killed between creating and writing it).
 * - A stale lock is broken under a second O_EXCL file, `<store>.lock.break`, after checking
 *   that the lock is still the very file judged stale (same inode, same content): two
 *   waiters cannot both break it, and none can remove a lock created after the judgement.
 *   A guard whose breaker died (same host, pid gone) is cleared at once.
 * - Release (a finalizer, so also on failure and interruption) removes the file only if it
 *   still holds our nonce.
 */
import { StoreError, StoreLocked, StorePermissions } from "@agent-auth/core"
import { FileSystem } from "@effect/platform"
import { Clock, Data, DateTime, Duration, Effect, Option, Schedule, Scope } from "effect"
import { readlinkSync } from "node:fs"
import * as os from "node:os"
import { fromPlatformError, lstat, randomName } from "./atomicFile.js"

export interface LockOptions {
  /** The store the lock guards (errors name it); the lock file is `${path}.lock`. */
  readonly path: string
  /** How long to wait for another holder. */
  readonly timeout: Duration.Duration
  /** A lock untouched this long is abandoned. */
  readonly staleAfter: Duration.Duration
}

export interface FileLock {
  readonly lockPath: string
  /** Runs `effect` holding the lock; it is released when `effect` ends, however it ends. */
  readonly withLock: <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | StoreLocked | StoreError | StorePermissions, R>
}

/** What a lock file says about its holder. */
export interface Holder {
  readonly pid?: number
  readonly host?: string
  /** The holder's PID namespace (see `pidNamespace`); absent where it has none, or from an older agent-auth. */
  readonly pidns?: string
  readonly createdAt?: string
  readonly nonce?: string
}

/** The lock is held by someone else (internal: becomes `StoreLocked` after the timeout). */
class Busy extends Data.TaggedError("Busy")<{ readonly holderPid: number | undefined }> {}

interface Observed {
  readonly ino: bigint
  readonly mtimeMs: number
  readonly raw: string
  readonly holder: Holder | undefined
}

export const parseHolder = (raw: string): Holder | undefined => {
  try {
    const json: unknown = JSON.parse(raw)
    if (typeof json !== "object" || json === null) return undefined
    const o = json as Record<string, unknown>
    return {
      ...(typeof o.pid === "number" && Number.isSafeInteger(o.pid) && o.pid > 0 ? { pid: o.pid } : {}),
      ...(typeof o.host === "string" ? { host: o.host } : {}),
      ...(typeof o.pidns === "string" ? { pidns: o.pidns } : {}),
      ...(typeof o.createdAt === "string" ? { createdAt: o.createdAt } : {}),
      ...(typeof o.nonce === "string" ? { nonce: o.nonce } : {})
    }
  } catch {
    return undefined
  }
}

/** Whether a process of this host with this pid exists (EPERM: it does, as another user). */
export const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH"
  }
}

/**
 * This process's PID namespace: the inode of `/proc/self/ns/pid` (Linux), else undefined.
 * Two processes see the same pids only when this is the same.
 */
export const pidNamespace = (): string | undefined => {
  try {
    const link = readlinkSync("/proc/self/ns/pid")
    return /^pid:\[(\d+)\]$/.exec(link)?.[1]
  } catch {
    return undefined
  }
}

const ownNamespace = pidNamespace()

/**
 * A holder whose process we can check (this host, this PID namespace — both unknown
 * counts as the same, as on a system without namespaces) and which no longer exists.
 */
const isDeadHere = (h: Holder | undefined): boolean =>
  h?.pid !== undefined && h.host === os.hostname() && h.pidns === ownNamespace && !isProcessAlive(h.pid)

/** How long a lock may stay empty (created, holder not yet written) before it counts as abandoned. */
export const unidentifiedAfter: Duration.Duration = Duration.seconds(5)

/** Why an observed lock may be taken over, or undefined while it is live. */
export const staleness = (observed: Observed, nowMs: number, staleAfter: Duration.Duration): string | undefined => {
  const h = observed.holder
  if (isDeadHere(h)) return `holder process ${h!.pid} is gone`
  const age = nowMs - observed.mtimeMs
  if (age > Duration.toMillis(staleAfter)) return `untouched for ${Math.round(age / 1000)} s`
  // Its creator writes who it is right after creating it: a lock still saying nothing after a
  // few seconds was left by a process killed in between, and would otherwise wait out staleAfter.
  if (h === undefined && age > Duration.toMillis(unidentifiedAfter)) return `it names no holder after ${Math.round(age / 1000)} s`
  return undefined
}

/** A breaker that died while holding `.break` leaves it behind; this long after, it is cleared. */
const breakGuardStaleMs = 10_000

export const make = (options: LockOptions): Effect.Effect<FileLock, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { path } = options
    const lockPath = `${path}.lock`
    const guardPath = `${lockPath}.break`
    const semaphore = yield* Effect.makeSemaphore(1)
    const storeError = fromPlatformError(path)
    const host = os.hostname()
    const identity = ownNamespace === undefined ? {} : { pidns: ownNamespace }

    const isGone = (e: unknown) =>
      typeof e === "object" && e !== null && (e as { _tag?: string })._tag === "SystemError" &&
      (e as { reason?: string }).reason === "NotFound"
    const isTaken = (e: unknown) =>
      typeof e === "object" && e !== null && (e as { _tag?: string })._tag === "SystemError" &&
      (e as { reason?: string }).reason === "AlreadyExists"

    /** Creates `file` exclusively with `content`; false when it exists. */
    const createExclusive = (file: string, content: string) =>
      Effect.scoped(Effect.gen(function*() {
        const handle = yield* fs.open(file, { flag: "wx", mode: 0o600 })
        yield* handle.writeAll(new TextEncoder().encode(content)).pipe(
          // Created but unwritten: remove it rather than leave a lock nobody can identify.
          Effect.tapError(() => fs.remove(file).pipe(Effect.ignore))
        )
        return true
      })).pipe(
        Effect.catchIf(isTaken, () => Effect.succeed(false)),
        Effect.mapError(storeError)
      )

    /** The lock (or the break guard) as it is now; None when it vanished meanwhile. */
    const observeFile = (file: string): Effect.Effect<Option.Option<Observed>, StoreError | StorePermissions> => Effect.gen(function*() {
      const st = yield* lstat(file, path)
      if (Option.isNone(st)) return Option.none()
      const raw = yield* fs.readFileString(file).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isGone, () => Effect.succeed(Option.none<string>())),
        Effect.mapError(storeError)
      )
      if (Option.isNone(raw)) return Option.none()
      return Option.some({
        ino: st.value.ino,
        mtimeMs: Number(st.value.mtimeMs),
        raw: raw.value,
        holder: parseHolder(raw.value)
      })
    })
    const observe = observeFile(lockPath)

    /** Removes the lock if it is still exactly `judged`, under the `.break` guard. */
    const breakStale = (judged: Observed) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const guarded = yield* createExclusive(guardPath, JSON.stringify({ pid: process.pid, host, ...identity, at: now }))
        if (!guarded) {
          // A guard whose breaker is gone (killed mid-break) would hold every writer back for
          // breakGuardStaleMs: cleared at once when its process is known dead, else after that.
          return yield* clearDeadGuard
        }
        yield* Effect.gen(function*() {
          const current = yield* observe
          if (Option.isSome(current) && current.value.ino === judged.ino && current.value.raw === judged.raw) {
            yield* fs.remove(lockPath).pipe(Effect.catchIf(isGone, () => Effect.void), Effect.mapError(storeError))
            yield* Effect.logWarning(`agent-auth: took over a stale lock ${lockPath}`)
          }
        }).pipe(Effect.ensuring(fs.remove(guardPath).pipe(Effect.ignore)))
      })

    /**
     * A guard left by a breaker killed after it removed the stale lock (and before its own
     * guard): no one else needs to break anything then, so no breaker clears it. The next
     * holder does, when its breaker is dead (or it is old): a live breaker's is left alone.
     */
    const clearDeadGuard = Effect.gen(function*() {
      const guard = yield* observeFile(guardPath)
      if (Option.isNone(guard)) return
      const now = yield* Clock.currentTimeMillis
      if (isDeadHere(guard.value.holder) || now - guard.value.mtimeMs > breakGuardStaleMs) {
        yield* fs.remove(guardPath).pipe(Effect.ignore)
      }
    }).pipe(Effect.ignore)

    const release = (nonce: string) =>
      Effect.gen(function*() {
        const current = yield* observe
        if (Option.isSome(current) && current.value.holder?.nonce === nonce) {
          yield* fs.remove(lockPath).pipe(Effect.catchIf(isGone, () => Effect.void), Effect.mapError(storeError))
        } else {
          yield* Effect.logWarning(`agent-auth: the lock ${lockPath} was taken over while held`)
        }
      }).pipe(Effect.catchAll((e) => Effect.logWarning(`agent-auth: could not release ${lockPath}: ${e.message}`)))

    /** Keeps the lock's mtime fresh so waiters can tell a live holder from a dead one. */
    const heartbeat = Effect.gen(function*() {
      const now = new Date(yield* Clock.currentTimeMillis)
      yield* fs.utimes(lockPath, now, now)
    }).pipe(
      Effect.ignore,
      Effect.repeat(Schedule.spaced(Duration.divide(options.staleAfter, 6).pipe(Option.getOrElse(() => Duration.seconds(5)))))
    )

    /**
     * One try: create the lock, or break it when stale and try once more, or fail `Busy`.
     * Uninterruptible, so an acquired lock always has its release registered in `scope`.
     */
    const attempt = (scope: Scope.Scope) =>
      Effect.uninterruptible(Effect.gen(function*() {
        const nonce = yield* randomName
        const createdAt = DateTime.formatIso(yield* DateTime.now)
        const content = JSON.stringify({ pid: process.pid, host, ...identity, createdAt, nonce })
        for (let round = 0; round < 2; round++) {
          if (yield* createExclusive(lockPath, content)) {
            yield* Scope.addFinalizer(scope, release(nonce))
            yield* clearDeadGuard
            // Forked from an uninterruptible region: made interruptible, or closing the scope would wait on it forever.
            yield* Effect.forkIn(Effect.interruptible(heartbeat), scope)
            return
          }
          const observed = yield* observe
          if (Option.isNone(observed)) continue // released meanwhile: try again at once
          const why = staleness(observed.value, yield* Clock.currentTimeMillis, options.staleAfter)
          if (why === undefined || round === 1) {
            return yield* Effect.fail(new Busy({ holderPid: observed.value.holder?.pid }))
          }
          yield* breakStale(observed.value)
        }
        return yield* Effect.fail(new Busy({ holderPid: undefined }))
      }))

    // Short waits first (a write holds the lock for milliseconds), never more than 250 ms
    // between polls, jittered so waiting processes do not poll in step.
    const backoff = Schedule.exponential(Duration.millis(4), 1.5).pipe(
      Schedule.union(Schedule.spaced(Duration.millis(250))),
      Schedule.jittered,
      Schedule.upTo(options.timeout),
      Schedule.whileInput((e: unknown) => e instanceof Busy)
    )

    const acquire = (scope: Scope.Scope) =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        yield* attempt(scope).pipe(
          Effect.retry(backoff),
          Effect.catchTag("Busy", (busy) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.fail(
                new StoreLocked({
                  path,
                  waitedMs: now - start,
                  ...(busy.holderPid === undefined ? {} : { holderPid: busy.holderPid })
                })
              )))
        )
      })

    const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      semaphore.withPermits(1)(
        Effect.scopedWith((scope) => Effect.zipRight(acquire(scope), effect))
      )

    return { lockPath, withLock }
  })
