/** Moving the TestClock while an effect that also does real I/O (files) runs to its end. */
import { Effect, Fiber, Option, TestClock } from "effect"

/**
 * Runs `effect` while moving the TestClock a second at a time, with a turn of the real event
 * loop in between (file I/O), until it ends; returns its exit and how much test time passed.
 */
export const driveClock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* TestClock.currentTimeMillis
    const fiber = yield* Effect.fork(effect)
    for (let i = 0; i < 3_600; i++) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return { exit: done.value, elapsed: (yield* TestClock.currentTimeMillis) - start }
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      yield* TestClock.adjust("1 second")
    }
    return yield* Effect.dieMessage("the effect did not end within an hour of test time")
  })
