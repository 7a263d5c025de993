/**
 * Help text, written from the command tree (command.ts) for people: what the command does,
 * how it is written (with the program name), its arguments and flags in plain words, and
 * examples. It goes to stdout (it is what `--help` was asked for); bold only on a terminal
 * without NO_COLOR.
 */
import type { Command, Flag, Group, Leaf } from "./command.js"
import { helpFlag, visible } from "./command.js"
import { commandLine } from "./parse.js"

const styled = (): boolean => process.stdout.isTTY === true && process.env.NO_COLOR === undefined
const bold = (s: string) => (styled() ? `\u001b[1m${s}\u001b[0m` : s)

/** Two columns: names padded to the widest, then the text. */
const columns = (rows: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const width = Math.min(28, Math.max(...rows.map(([name]) => name.length)))
  return rows.map(([name, text]) =>
    name.length > width ? `  ${name}\n  ${" ".repeat(width)}  ${text}` : `  ${name.padEnd(width)}  ${text}`
  )
}

const flagName = (f: Flag<unknown>) =>
  (f.name === "help" ? "-h, --help" : `--${f.name}`) + (f.placeholder === undefined ? "" : ` ${f.placeholder}`) +
  (f.repeatable === true ? " …" : "")

const flagRows = (flags: ReadonlyArray<Flag<unknown>>) =>
  columns([...flags.filter((f) => !f.hidden), helpFlag].map((f) =>
    [flagName(f), f.description + (f.repeatable === true ? " (may be given several times)" : "")] as const
  ))

const examples = (list: Command["examples"]): Array<string> =>
  list.length === 0 ? [] : ["", bold("Examples"), ...list.flatMap((e) => [`  $ ${e.command}`, `      ${e.does}`])]

/** `agent-auth login [<provider>] [flags]` */
export const usageLine = (path: ReadonlyArray<string>, command: Command): string => {
  if (command._tag === "Group") return `${commandLine(path)} <command> [flags]`
  const args = command.argOrder.map((k) => {
    const a = command.args[k]!
    return a.optional ? `[<${a.name}>]` : `<${a.name}>`
  })
  return [commandLine(path), ...args, "[flags]"].join(" ")
}

const leafHelp = (path: ReadonlyArray<string>, leaf: Leaf): Array<string> => [
  `${bold(commandLine(path))} — ${leaf.summary}`,
  "",
  bold("Usage"),
  `  ${usageLine(path, leaf)}`,
  "",
  leaf.description,
  ...(leaf.argOrder.length === 0
    ? []
    : ["", bold("Arguments"), ...columns(leaf.argOrder.map((k) => {
      const a = leaf.args[k]!
      return [`<${a.name}>`, a.description + (a.optional ? " (optional)" : "")] as const
    }))]),
  "",
  bold("Flags"),
  ...flagRows(Object.values(leaf.flags)),
  ...examples(leaf.examples)
]

const groupHelp = (path: ReadonlyArray<string>, group: Group, extra: ReadonlyArray<Flag<unknown>>): Array<string> => [
  `${bold(commandLine(path))} — ${group.summary}`,
  "",
  bold("Usage"),
  `  ${usageLine(path, group)}`,
  "",
  group.description,
  "",
  bold("Commands"),
  ...columns(visible(group).map((c) => [c.name, c.summary] as const)),
  "",
  bold("Flags"),
  ...flagRows([...Object.values(group.flags), ...extra]),
  ...examples(group.examples),
  "",
  `\`${commandLine(path)} <command> --help\` shows a command's flags and examples.`
]

/** The help of `command` (at `path` in the tree), ending in a newline. */
export const helpText = (path: ReadonlyArray<string>, command: Command): string =>
  (command._tag === "Leaf" ? leafHelp(path, command) : groupHelp(path, command, [])).join("\n") + "\n"
