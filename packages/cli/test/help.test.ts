/**
 * Help and parsing, read from the command tree (src/cli.ts): every visible command's help
 * names the program, says what the command does, describes each flag in its own words (none
 * of @effect/cli's "A true or false value."), and gives two examples or more; plain text
 * when stdout is not a terminal. And the parser's rules, one by one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Either } from "effect"
import { root } from "../src/cli.js"
import type { Command, Group } from "../src/internal/command.js"
import { helpText } from "../src/internal/help.js"
import { parse } from "../src/internal/parse.js"

const commands = (group: Group, path: ReadonlyArray<string>): Array<{ path: ReadonlyArray<string>; command: Command }> =>
  group.commands.filter((c) => !c.hidden).flatMap((c) => [
    { path: [...path, c.name], command: c },
    ...(c._tag === "Group" ? commands(c, [...path, c.name]) : [])
  ])

const all = [{ path: [root.name], command: root as Command }, ...commands(root, [root.name])]

const plan = (argv: ReadonlyArray<string>) => parse(root, argv)
const error = (argv: ReadonlyArray<string>) => {
  const r = plan(argv)
  expect(Either.isLeft(r), argv.join(" ")).toBe(true)
  return Either.isLeft(r) ? r.left.message : ""
}
const values = (argv: ReadonlyArray<string>) => {
  const r = plan(argv)
  if (Either.isLeft(r)) throw new Error(r.left.message)
  if (r.right._tag !== "Run") throw new Error(r.right._tag)
  return r.right.values
}

describe("help", () => {
  it("every command: the program name, a description, flags in plain words, two examples, no ANSI off a terminal", () => {
    expect(all.length).toBeGreaterThanOrEqual(10)
    for (const { path, command } of all) {
      const text = helpText(path, command)
      const where = path.join(" ")
      expect(text, where).toContain(`${where} — ${command.summary}`)
      expect(text, where).toMatch(new RegExp(`Usage\\n  ${where} `))
      expect(text, where).toContain(command.description)
      expect(text, where).not.toContain("\u001b[")
      expect(text, where).not.toMatch(/A true or false value|This setting is optional|A user-defined piece of text|--wizard|--log-level/)
      expect(command.examples.length, where).toBeGreaterThanOrEqual(2)
      for (const e of command.examples) {
        expect(e.command.startsWith("agent-auth "), where).toBe(true)
        expect(text).toContain(`$ ${e.command}`)
      }
      for (const flag of Object.values(command.flags)) {
        expect(flag.description.length, `${where} --${flag.name}`).toBeGreaterThan(10)
        expect(text).toContain(`--${flag.name}`)
      }
      expect(text).toContain("-h, --help")
    }
  })

  it("--help or -h anywhere shows the help of the command named so far, even after a bad flag", () => {
    for (const argv of [["--help"], ["-h"], ["login", "--help"], ["login", "demo", "--port", "abc", "-h"], ["nope", "--help"]]) {
      const r = plan(argv)
      expect(Either.isRight(r) && r.right._tag, argv.join(" ")).toBe("Help")
    }
    const r = Either.getOrThrow(plan(["login", "--bogus", "--help"]))
    expect(r._tag === "Help" && r.path).toEqual(["agent-auth", "login"])
    // After `--`, it is an argument.
    expect(Either.isLeft(plan(["token", "--", "--help"]))).toBe(false)
  })

  it("the version, and the completion scripts, only at the top", () => {
    expect(Either.getOrThrow(plan(["--version"]))._tag).toBe("Version")
    expect(Either.getOrThrow(plan(["--completions", "zsh"]))).toEqual({ _tag: "Completions", shell: "zsh" })
    expect(Either.getOrThrow(plan(["--completions=fish"]))).toEqual({ _tag: "Completions", shell: "fish" })
    expect(error(["--completions", "sh"])).toContain("one of bash, zsh, fish")
    expect(error(["status", "--version"])).toContain("--version is not a flag of agent-auth status")
    expect(Either.getOrThrow(plan([]))._tag).toBe("Help")
  })
})

describe("the parser", () => {
  it("flags as --name VALUE or --name=VALUE, anywhere after the command; booleans take no value", () => {
    expect(values(["token", "--account", "work", "demo"])).toMatchObject({ provider: "demo", account: "work", json: false })
    expect(values(["token", "demo", "--account=work", "--json"])).toMatchObject({ provider: "demo", account: "work", json: true })
    expect(error(["status", "--json=yes"])).toContain("--json takes no value")
    expect(error(["login", "demo", "--with-api-key=sk-secret-value"])).not.toContain("sk-secret-value")
  })

  it("ports 0–65535, timeouts above zero, account names of 1–64 printable characters without whitespace", () => {
    expect(values(["login", "demo", "--port", "0"]).port).toBe(0)
    expect(values(["login", "demo", "--port", "65535"]).port).toBe(65535)
    for (const port of ["65536", "99999", "-1", "1e3", "80.5", "abc", ""]) {
      expect(error(["login", "demo", `--port=${port}`])).toContain("a port is a whole number from 0 to 65535")
    }
    expect(Duration.toMillis(values(["login", "demo", "--timeout", "90s"]).timeout as Duration.Duration)).toBe(90_000)
    expect(Duration.toMillis(values(["login", "demo", "--timeout", "5m"]).timeout as Duration.Duration)).toBe(300_000)
    for (const timeout of ["0s", "0", "0ms", "-5m", "25h", "5 m", "soon"]) {
      expect(error(["login", "demo", `--timeout=${timeout}`])).toContain("more than zero")
    }
    expect(values(["token", "demo", "--account", "ada@example.com"]).account).toBe("ada@example.com")
    expect(values(["token", "demo", "--account", "x".repeat(64)]).account).toBe("x".repeat(64))
    for (const account of ["", " work ", "a b", "a\nb", "tab\there", "x".repeat(65), "bell\u0007"]) {
      expect(error(["token", "demo", `--account=${account}`])).toContain("an account name is 1 to 64 printable characters without spaces")
    }
  })

  it("says what is wrong in words, with the command that shows how", () => {
    expect(error(["login", "--port", "abc"])).toBe("--port abc: a port is a whole number from 0 to 65535 (0 picks a free one). `agent-auth login --help` explains it.")
    expect(error(["status", "--bogus"])).toBe("--bogus is not a flag of agent-auth status. `agent-auth status --help` lists its flags.")
    expect(error(["status", "--jsno"])).toContain("Did you mean --json?")
    expect(error(["token", "demo", "--account"])).toContain("--account needs a value")
    expect(error(["token", "--account", "--json", "demo"])).toContain("--account needs a value")
    expect(error(["token"])).toContain("agent-auth token needs <provider>")
    expect(error(["status", "demo", "openai"])).toContain("argument 3 is one too many")
    expect(error(["providers", "x"])).toContain("agent-auth providers takes no arguments")
    expect(error(["--json", "status"])).toContain("--json goes after a command")
    expect(error(["stats"])).toContain("Did you mean `agent-auth status`?")
    expect(error(["login", "--device", "--device"])).toContain("--device is given twice")
    expect(error(["import", "claude"])).toContain("the only source is codex")
  })

  it("never echoes a long or odd word back", () => {
    const odd = "x".repeat(40)
    for (const argv of [[odd], ["status", `--${odd}`], ["login", "demo", "--port", odd], ["\u001b]0;title\u0007"]]) {
      const message = error(argv)
      expect(message).not.toContain(odd)
      expect(message).not.toMatch(/[\u0000-\u001f]/)
    }
  })
})
