/**
 * One lock per key, in this process: fibers writing the same key queue here, so at most
 * one of them holds a database connection while it waits for the database's lock (a
 * queue of fibers waiting there would each hold a connection of the pool). A key's entry
 * lives while someone holds or waits for it.
 */
import { Effect } from "effect"

export const keyedLock = () => {
  const locks = new Map<string, { readonly semaphore: Effect.Semaphore; users: number }>()
  return (key: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      let entry = locks.get(key)
      if (entry === undefined) {
        entry = { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }
        locks.set(key, entry)
      }
      const held = entry
      held.users++
      return held.semaphore.withPermits(1)(effect).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (--held.users === 0) locks.delete(key)
        }))
      )
    })
}
