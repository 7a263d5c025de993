/** Options shared by several commands, and small parsers. */
import { Options } from "@effect/cli"
import { Duration, Either, Option } from "effect"

export const json = Options.boolean("json").pipe(Options.withDescription("print JSON on stdout"))
export const verbose = Options.boolean("verbose").pipe(
  Options.withDescription("trace each protocol step on stderr, secrets redacted (or AGENT_AUTH_LOG=debug)")
)
export const account = Options.text("account").pipe(
  Options.optional,
  Options.withDescription("which account, when a provider has several")
)

/** "90s", "5m", "1h", or a number of seconds. */
export const parseDuration = (text: string): Either.Either<Duration.Duration, string> => {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?$/.exec(text.trim())
  if (m === null) return Either.left(`"${text}" is not a duration (try 90s, 5m or 1h)`)
  const n = Number(m[1])
  switch (m[2]) {
    case "ms":
      return Either.right(Duration.millis(n))
    case "m":
    case "min":
      return Either.right(Duration.minutes(n))
    case "h":
      return Either.right(Duration.hours(n))
    default:
      return Either.right(Duration.seconds(n))
  }
}

export const optionValue = <A>(o: Option.Option<A>): A | undefined => Option.getOrUndefined(o)
