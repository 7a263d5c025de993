/**
 * Private, durable file writes: temp file (0600) + fsync + rename in a 0700 folder. The
 * one implementation behind every file agent-auth writes (credentials, config.json's
 * defaults, the demo server's state).
 */
import { FileSystem } from "@effect/platform"
import type { StoreError, StorePermissions } from "@agent-auth/core"
import { Effect } from "effect"
import * as NodePath from "node:path"
import { ensurePrivateDir, writeAtomic } from "./internal/atomicFile.js"
import { type FileLock, type LockOptions, make as makeLock } from "./internal/fileLock.js"

export { ensurePrivateDir, writeAtomic }

/**
 * The cross-process lock credentials.json uses (`<file>.lock`, O_EXCL, stale-lock takeover;
 * see internal/fileLock.ts): for any other file read, changed and written back by several
 * processes (mcp.json), so none loses another's write.
 */
export { type FileLock, type LockOptions, makeLock }

/** Replaces `file` with `text` (mode 0600), creating its folder 0700 when missing. */
export const writeText = (
  file: string,
  text: string
): Effect.Effect<void, StoreError | StorePermissions, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* ensurePrivateDir(fs, NodePath.dirname(file), file)
    yield* writeAtomic(fs, file, new TextEncoder().encode(text))
  })
