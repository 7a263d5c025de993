/**
 * Reads a command line against the command tree (command.ts). Pure: no I/O, no services, so
 * `--help`, `--version` and `--completions` never depend on config.json, and every command
 * line (tested with generated ones) ends in a plan or a `UsageError`, never a throw.
 *
 * Rules: flags anywhere after their command (`--name VALUE` or `--name=VALUE`); a value
 * never starts with `-` unless written `--name=VALUE`; each flag at most once (a repeatable
 * one as often as wanted, its values kept in order); `--` ends
 * the flags. `-h`/`--help` anywhere shows the help of the command named so far.
 */
import { UsageError } from "@agent-auth/core"
import { Either } from "effect"
import type { Command, Flag, Group, Leaf } from "./command.js"

export type Shell = "bash" | "zsh" | "fish"
export const SHELLS: ReadonlyArray<Shell> = ["bash", "zsh", "fish"]

export type Plan =
  | { readonly _tag: "Run"; readonly path: ReadonlyArray<string>; readonly leaf: Leaf; readonly values: Record<string, unknown> }
  | { readonly _tag: "Help"; readonly path: ReadonlyArray<string>; readonly command: Command }
  | { readonly _tag: "Version" }
  | { readonly _tag: "Completions"; readonly shell: Shell }

/** How a command is written: `agent-auth login`. */
export const commandLine = (path: ReadonlyArray<string>) => path.join(" ")

/** A word shown back to the person: only short, plain ones (never a pasted secret, never control bytes). */
const shown = (word: string): string | undefined => (/^[\w.:@/+-]{1,32}$/.test(word) ? word : undefined)

/** The closest of `names` to `word`, when it is a likely typo. */
export const closest = (word: string, names: ReadonlyArray<string>): string | undefined => {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i)
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0]!
      row[0] = i
      for (let j = 1; j <= b.length; j++) {
        const here = row[j]!
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
        prev = here
      }
    }
    return row[b.length]!
  }
  let best: string | undefined
  let bestDistance = 3
  for (const name of names) {
    const d = distance(word, name)
    if (d < bestDistance) {
      best = name
      bestDistance = d
    }
  }
  return best
}

const usage = (reason: string) => new UsageError({ source: "command line", reason })
const seeHelp = (path: ReadonlyArray<string>) => `\`${commandLine(path)} --help\``

/** The command `path` names in the tree (for help), as far as its words go. */
const helpTarget = (root: Group, argv: ReadonlyArray<string>): { path: Array<string>; command: Command } => {
  let command: Command = root
  const path = [root.name]
  for (const word of argv) {
    if (word === "--") break
    if (word.startsWith("-") || command._tag !== "Group") continue
    const next: Command | undefined = command.commands.find((c) => c.name === word)
    if (next === undefined) break
    command = next
    path.push(word)
  }
  return { path, command }
}

const wantsHelp = (argv: ReadonlyArray<string>): boolean => {
  for (const word of argv) {
    if (word === "--") return false
    if (word === "-h" || word === "--help") return true
  }
  return false
}

export const parse = (root: Group, argv: ReadonlyArray<string>): Either.Either<Plan, UsageError> => {
  if (wantsHelp(argv)) return Either.right({ _tag: "Help", ...helpTarget(root, argv) })
  return parseGroup(root, [root.name], argv)
}

const parseGroup = (group: Group, path: ReadonlyArray<string>, argv: ReadonlyArray<string>): Either.Either<Plan, UsageError> => {
  const isRoot = path.length === 1
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!
    if (isRoot && word === "--version") {
      return argv.length === 1 ? Either.right({ _tag: "Version" }) : Either.left(usage("--version takes nothing else: `agent-auth --version`."))
    }
    if (isRoot && (word === "--completions" || word.startsWith("--completions="))) {
      const shell = word.includes("=") ? word.slice(word.indexOf("=") + 1) : argv[i + 1]
      const rest = argv.length - (word.includes("=") ? 1 : 2)
      if (shell === undefined || !(SHELLS as ReadonlyArray<string>).includes(shell) || rest !== 0) {
        return Either.left(usage(`--completions needs a shell, one of ${SHELLS.join(", ")}: \`agent-auth --completions bash\`.`))
      }
      return Either.right({ _tag: "Completions", shell: shell as Shell })
    }
    if (word.startsWith("-")) {
      const name = word.split("=")[0]!
      const known = shown(name)
      return Either.left(usage(
        known === undefined
          ? `Argument ${i + 1} is not a command. ${seeHelp(path)} lists the commands.`
          : `${known} goes after a command (\`${commandLine(path)} <command> ${known}\`). ${seeHelp(path)} lists the commands.`
      ))
    }
    const next = group.commands.find((c) => c.name === word)
    if (next === undefined) {
      const guess = closest(word, group.commands.filter((c) => !c.hidden).map((c) => c.name))
      const named = shown(word)
      return Either.left(usage(
        `${named === undefined ? `Argument ${i + 1}` : `"${named}"`} is not a command of ${commandLine(path)}.` +
          (guess === undefined ? "" : ` Did you mean \`${commandLine(path)} ${guess}\`?`) +
          ` ${seeHelp(path)} lists the commands.`
      ))
    }
    const rest = argv.slice(i + 1)
    return next._tag === "Group" ? parseGroup(next, [...path, next.name], rest) : parseLeaf(next, [...path, next.name], rest)
  }
  return Either.right({ _tag: "Help", path, command: group })
}

const parseLeaf = (leaf: Leaf, path: ReadonlyArray<string>, argv: ReadonlyArray<string>): Either.Either<Plan, UsageError> => {
  const values: Record<string, unknown> = {}
  const seen = new Set<string>()
  const positionals: Array<{ word: string; position: number }> = []
  const flags = Object.entries(leaf.flags)
  const flagNamed = (name: string): [string, Flag<unknown>] | undefined => flags.find(([, f]) => `--${f.name}` === name)
  // Positions in messages count from the first word after `agent-auth`.
  const offset = path.length - 1
  let onlyPositionals = false
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!
    if (onlyPositionals || word === "-" || !word.startsWith("-")) {
      positionals.push({ word, position: offset + i + 1 })
      continue
    }
    if (word === "--") {
      onlyPositionals = true
      continue
    }
    const eq = word.indexOf("=")
    const name = eq === -1 ? word : word.slice(0, eq)
    const found = flagNamed(name)
    if (found === undefined) {
      const guess = closest(name, flags.filter(([, f]) => !f.hidden).map(([, f]) => `--${f.name}`))
      const named = shown(name)
      return Either.left(usage(
        `${named === undefined ? `Argument ${offset + i + 1}` : named} is not a flag of ${commandLine(path)}.` +
          (name === "--log-level"
            ? " For debug output use --verbose (or AGENT_AUTH_LOG=debug)."
            : guess === undefined
            ? ""
            : ` Did you mean ${guess}?`) + ` ${seeHelp(path)} lists its flags.`
      ))
    }
    const [key, flag] = found
    if (seen.has(key) && flag.repeatable !== true) return Either.left(usage(`${name} is given twice; give it once. ${seeHelp(path)} explains it.`))
    seen.add(key)
    if (flag.parse === undefined) {
      if (eq !== -1) return Either.left(usage(`${name} takes no value (argument ${offset + i + 1}). ${seeHelp(path)} explains it.`))
      values[key] = true
      continue
    }
    let text: string
    if (eq !== -1) {
      text = word.slice(eq + 1)
    } else {
      const next = argv[i + 1]
      if (next === undefined || (next.startsWith("-") && next !== "-")) {
        return Either.left(usage(`${name} needs a value: \`${commandLine(path)} ${name} ${flag.placeholder ?? "VALUE"}\`. ${seeHelp(path)} explains it.`))
      }
      text = next
      i++
    }
    const read = flag.parse(text)
    if (Either.isLeft(read)) {
      const named = shown(text)
      return Either.left(usage(`${name}${named === undefined ? "" : ` ${named}`}: ${read.left}. ${seeHelp(path)} explains it.`))
    }
    values[key] = flag.repeatable === true ? [...((values[key] as Array<unknown> | undefined) ?? []), read.right] : read.right
  }
  for (const [key, flag] of flags) {
    if (!seen.has(key)) values[key] = flag.parse === undefined ? false : flag.repeatable === true ? [] : undefined
  }
  const order = leaf.argOrder
  if (positionals.length > order.length) {
    const extra = positionals[order.length]!
    return Either.left(usage(
      order.length === 0
        ? `${commandLine(path)} takes no arguments; argument ${extra.position} is one too many. ${seeHelp(path)} explains it.`
        : `${commandLine(path)} takes ${order.map((k) => `<${leaf.args[k]!.name}>`).join(" ")}; argument ${extra.position} is one too many. ${seeHelp(path)} explains it.`
    ))
  }
  for (let n = 0; n < order.length; n++) {
    const key = order[n]!
    const spec = leaf.args[key]!
    const given = positionals[n]
    if (given === undefined) {
      if (!spec.optional) {
        return Either.left(usage(`${commandLine(path)} needs <${spec.name}>: \`${commandLine(path)} <${spec.name}>\` (${spec.description}). ${seeHelp(path)} explains it.`))
      }
      values[key] = undefined
      continue
    }
    const read = spec.parse(given.word)
    if (Either.isLeft(read)) return Either.left(usage(`<${spec.name}> (argument ${given.position}): ${read.left}. ${seeHelp(path)} explains it.`))
    values[key] = read.right
  }
  return Either.right({ _tag: "Run", path, leaf, values })
}
