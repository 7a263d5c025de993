/** Exit codes: set by commands that succeed with a verdict (status), and mapped from errors. */
import { Cause, Effect, Exit, Option } from "effect"
import { ExitCode } from "@agent-auth/core"

export const exitWith = (code: number) => Effect.sync(() => void (process.exitCode = code))

/** The exit code of an error: each of ours carries one. */
export const exitCodeOf = (error: unknown): number => {
  if (typeof error === "object" && error !== null) {
    const code = (error as { exitCode?: unknown }).exitCode
    if (typeof code === "number") return code
  }
  return ExitCode.Provider
}

/** Node's exit code for how the program ended: interrupted (Ctrl-C) is 130. */
export const teardown = <E, A>(exit: Exit.Exit<E, A>, onExit: (code: number) => void) => {
  if (Exit.isSuccess(exit)) return onExit(typeof process.exitCode === "number" ? process.exitCode : 0)
  if (Cause.isInterruptedOnly(exit.cause)) return onExit(ExitCode.Cancelled)
  const failure = Cause.failureOption(exit.cause)
  onExit(Option.isSome(failure) ? exitCodeOf(failure.value) : 1)
}
