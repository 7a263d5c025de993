/**
 * Whether a login can be saved, asked before the sign-in starts: an unwritable home would
 * otherwise be found only after the whole browser sign-in. For the file store (a
 * credentials.json location): its folder, or the nearest existing folder above it (where
 * it will be created), must be writable and searchable. Other stores answer when written.
 */
import { StoreError, TokenStore } from "@agent-auth/core"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

/** The nearest existing folder at or above `dir`, and whether it is a folder at all. */
const nearestExisting = (dir: string): { readonly dir: string; readonly isDir: boolean } => {
  for (let d = dir;; d = path.dirname(d)) {
    try {
      return { dir: d, isDir: fs.statSync(d).isDirectory() }
    } catch {
      if (path.dirname(d) === d) return { dir: d, isDir: false }
    }
  }
}

export const writableStore = Effect.gen(function*() {
  const store = yield* TokenStore.TokenStore
  const location = store.location
  if (!location.endsWith("credentials.json")) return
  const { dir, isDir } = nearestExisting(path.dirname(location))
  const problem = !isDir
    ? `${dir} is a file, not a folder`
    : yield* Effect.sync(() => {
      try {
        fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK)
        return undefined
      } catch {
        return `the folder ${dir} is not writable`
      }
    })
  if (problem !== undefined) {
    return yield* new StoreError({
      path: location,
      reason: `${problem}, so a login could not be saved; nothing was started. Fix its permissions, or set AGENT_AUTH_HOME to a folder you can write`
    })
  }
})
