/**
 * The CLI's command tree, declared as data: each command's words, arguments, flags (with
 * what they mean in plain words), examples and handler. The parser (parse.ts), the help
 * (help.ts) and the shell completion scripts (completions.ts) are all read from this one
 * tree, so a command added to it (say an `mcp` group) has its help, completion and
 * argument checks with nothing listed twice.
 *
 * This replaces @effect/cli's Command/Options/Args: its help cannot be rewritten (every
 * flag says "A true or false value. / This setting is optional.", ANSI when piped, no
 * program name, no examples), its completion scripts do not complete a subcommand's flags,
 * its parser messages cannot be changed ("'abc' is not a integer", "Invalid subcommand"
 * for an unknown flag), and it adds `--wizard` and `--log-level` to every command.
 */
import { Duration, Either } from "effect"
import type { Effect } from "effect"

/** What a shell may complete for a value: provider names, stored account names, a file, a fixed list. */
export type Completion =
  | { readonly _tag: "provider" }
  | { readonly _tag: "account" }
  | { readonly _tag: "file" }
  | { readonly _tag: "none" }
  | { readonly _tag: "choice"; readonly values: ReadonlyArray<string> }

export const complete = {
  provider: { _tag: "provider" } as Completion,
  account: { _tag: "account" } as Completion,
  file: { _tag: "file" } as Completion,
  none: { _tag: "none" } as Completion,
  choice: (values: ReadonlyArray<string>): Completion => ({ _tag: "choice", values })
}

/** A flag: `--name` (boolean) or `--name VALUE` / `--name=VALUE`. */
export interface Flag<A> {
  readonly name: string
  readonly description: string
  /** For a flag that takes a value: how help shows it (`N`, `NAME`, `DURATION`). */
  readonly placeholder?: string | undefined
  readonly completion: Completion
  /** Reads the value (a sentence saying what is wrong otherwise); absent for a boolean flag. */
  readonly parse?: ((text: string) => Either.Either<unknown, string>) | undefined
  /** Hidden from help and completion (kept working). */
  readonly hidden?: boolean | undefined
  /** May be given several times; its value is every one, in order (`[]` when not given). */
  readonly repeatable?: boolean | undefined
  readonly _A?: A
}

/** A positional argument. */
export interface Arg<A> {
  readonly name: string
  readonly description: string
  readonly optional: boolean
  readonly completion: Completion
  readonly parse: (text: string) => Either.Either<unknown, string>
  readonly _A?: A
}

export type Flags = Readonly<Record<string, Flag<any>>>
export type Args = Readonly<Record<string, Arg<any>>>

export type Values<F extends Flags, G extends Args> =
  & { readonly [K in keyof F]: F[K] extends Flag<infer A> ? A : never }
  & { readonly [K in keyof G]: G[K] extends Arg<infer A> ? A : never }

export interface Example {
  readonly command: string
  readonly does: string
}

/** A command that runs. */
export interface Leaf {
  readonly _tag: "Leaf"
  readonly name: string
  /** One line, for the list of commands. */
  readonly summary: string
  /** What it does, in a few sentences, for its help. */
  readonly description: string
  readonly args: Args
  readonly flags: Flags
  /** The order of `args` (object keys keep it, but this is explicit). */
  readonly argOrder: ReadonlyArray<string>
  readonly examples: ReadonlyArray<Example>
  readonly hidden: boolean
  readonly run: (values: Record<string, unknown>) => Effect.Effect<void, unknown, any>
}

/** A command made of commands (`agent-auth`, `agent-auth mcp`). */
export interface Group {
  readonly _tag: "Group"
  readonly name: string
  readonly summary: string
  readonly description: string
  readonly flags: Flags
  readonly commands: ReadonlyArray<Command>
  readonly examples: ReadonlyArray<Example>
  readonly hidden: boolean
}

export type Command = Leaf | Group

// -- flags and arguments -----------------------------------------------------------------

export const boolean = (name: string, description: string, options: { readonly hidden?: boolean } = {}): Flag<boolean> => ({
  name,
  description,
  completion: complete.none,
  hidden: options.hidden
})

/** A flag with a value; `undefined` when it is not given. */
export const value = <A>(
  name: string,
  options: {
    readonly description: string
    readonly placeholder: string
    readonly completion?: Completion
    readonly parse: (text: string) => Either.Either<A, string>
  }
): Flag<A | undefined> => ({
  name,
  description: options.description,
  placeholder: options.placeholder,
  completion: options.completion ?? complete.none,
  parse: options.parse
})

/** A flag with a value that may be given several times (`--scope a --scope b`): every value, in order. */
export const values = <A>(
  name: string,
  options: {
    readonly description: string
    readonly placeholder: string
    readonly completion?: Completion
    readonly parse: (text: string) => Either.Either<A, string>
  }
): Flag<ReadonlyArray<A>> => ({ ...value(name, options), repeatable: true }) as Flag<ReadonlyArray<A>>

export const arg = <A>(
  name: string,
  options: { readonly description: string; readonly completion?: Completion; readonly parse: (text: string) => Either.Either<A, string> }
): Arg<A> => ({ name, description: options.description, optional: false, completion: options.completion ?? complete.none, parse: options.parse })

export const optionalArg = <A>(a: Arg<A>): Arg<A | undefined> => ({ ...a, optional: true }) as Arg<A | undefined>

// -- value readers (each says what a good value looks like) -------------------------------

export const text = (text: string): Either.Either<string, string> => Either.right(text)

/** A port: a whole number 0–65535 (0: any free port). */
export const port = (text: string): Either.Either<number, string> => {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  return Number.isInteger(n) && n >= 0 && n <= 65535
    ? Either.right(n)
    : Either.left("a port is a whole number from 0 to 65535 (0 picks a free one)")
}

/** "90s", "5m", "1h", "500ms", or a number of seconds; more than zero, at most a day. */
export const duration = (text: string): Either.Either<Duration.Duration, string> => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|min|h)?$/.exec(text)
  const bad = "a duration is a number with a unit, more than zero and at most 24h: 90s, 5m or 1h"
  if (m === null) return Either.left(bad)
  const n = Number(m[1])
  const d = m[2] === "ms"
    ? Duration.millis(n)
    : m[2] === "m" || m[2] === "min"
    ? Duration.minutes(n)
    : m[2] === "h"
    ? Duration.hours(n)
    : Duration.seconds(n)
  const ms = Duration.toMillis(d)
  return ms > 0 && ms <= 86_400_000 ? Either.right(d) : Either.left(bad)
}

/**
 * An account name: 1–64 printable characters, no whitespace (it is shown in `status`, used in
 * commands it suggests, and is part of the store's key).
 */
export const accountName = (text: string): Either.Either<string, string> =>
  [...text].length >= 1 && [...text].length <= 64 && /^[^\s\p{C}]+$/u.test(text)
    ? Either.right(text)
    : Either.left("an account name is 1 to 64 printable characters without spaces")

/** A provider id as typed: one word (the registry says whether it exists). */
export const providerName = (text: string): Either.Either<string, string> =>
  text.length >= 1 && text.length <= 200 && !/[\s\p{Cc}]/u.test(text)
    ? Either.right(text)
    : Either.left("a provider is one word, as `agent-auth providers` lists it")

// -- commands -----------------------------------------------------------------------------

export const make = <F extends Flags, G extends Args, R>(spec: {
  readonly name: string
  readonly summary: string
  readonly description: string
  readonly args?: G
  readonly flags: F
  readonly examples: ReadonlyArray<Example>
  readonly hidden?: boolean
  readonly run: (values: Values<F, G>) => Effect.Effect<void, unknown, R>
}): Leaf => ({
  _tag: "Leaf",
  name: spec.name,
  summary: spec.summary,
  description: spec.description,
  args: spec.args ?? {},
  argOrder: Object.keys(spec.args ?? {}),
  flags: spec.flags,
  examples: spec.examples,
  hidden: spec.hidden ?? false,
  run: spec.run as Leaf["run"]
})

export const group = (spec: {
  readonly name: string
  readonly summary: string
  readonly description: string
  readonly flags?: Flags
  readonly commands: ReadonlyArray<Command>
  readonly examples: ReadonlyArray<Example>
  readonly hidden?: boolean
}): Group => ({ _tag: "Group", flags: {}, hidden: false, ...spec })

/** Flags every command takes, whatever it declares. */
export const helpFlag = boolean("help", "show this help")

/** The visible commands of a group. */
export const visible = (g: Group): ReadonlyArray<Command> => g.commands.filter((c) => !c.hidden)
