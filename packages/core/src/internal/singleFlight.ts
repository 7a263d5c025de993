/**
 * One run per key at a time: a caller that finds a run in progress awaits its exit instead
 * of starting another (a refresh storm makes one token request; a resolve storm reads the
 * sources once). Used by `Refresher` (per login) and `CredentialResolver` (per provider).
 */
import { Cause, Deferred, Effect, Exit, Option } from "effect"

/** What the waiters of a run get: its exit, or None when its leader was interrupted (then they try again). */
type Outcome<A, E> = Option.Option<Exit.Exit<A, E>>

export interface SingleFlight<A, E> {
  /**
   * Runs `run` unless a run of `key` is in progress, then awaits that one's exit. When the
   * leader is interrupted, its waiters run `again` (usually: the whole call once more).
   */
  readonly run: <R>(key: string, run: Effect.Effect<A, E, R>, again: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const make = <A, E>(): SingleFlight<A, E> => {
  // Plain Map: fibers interleave only between effects, and the check-and-set below is one step.
  const inflight = new Map<string, Deferred.Deferred<Outcome<A, E>>>()
  const run = <R>(key: string, effect: Effect.Effect<A, E, R>, again: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    // Masked from the map lookup on, so an interruption cannot leave a Deferred behind.
    Effect.uninterruptibleMask((restore) =>
      Effect.fiberIdWith((fiberId) => {
        const running = inflight.get(key)
        if (running !== undefined) {
          return restore(
            Effect.flatMap(Deferred.await(running), Option.match({ onNone: () => again, onSome: (exit) => exit }))
          )
        }
        const deferred = Deferred.unsafeMake<Outcome<A, E>>(fiberId)
        inflight.set(key, deferred)
        return restore(effect).pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              if (inflight.get(key) === deferred) inflight.delete(key)
              const interrupted = Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
              return Deferred.succeed(deferred, interrupted ? Option.none() : Option.some(exit))
            })
          )
        )
      })
    )
  return { run }
}
