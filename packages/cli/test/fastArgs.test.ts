/**
 * Which command lines the small bundle runs (test/cli-launcher.test.ts checks that it
 * prints what the whole CLI prints for them). Everything refused here goes to the whole CLI.
 */
import { describe, expect, it } from "@effect/vitest"
import { fastArgs } from "../src/internal/fastArgs.js"

describe("fastArgs", () => {
  it("takes status [provider] with --json and --verbose anywhere after the command", () => {
    expect(fastArgs(["status"])).toEqual({ command: "status", provider: undefined, json: false, verbose: false })
    expect(fastArgs(["status", "openai"])).toEqual({ command: "status", provider: "openai", json: false, verbose: false })
    expect(fastArgs(["status", "--json", "openai", "--verbose"])).toEqual({
      command: "status",
      provider: "openai",
      json: true,
      verbose: true
    })
    // `status` does not need the demo server (internal/demo.ts), so `status demo` is taken.
    expect(fastArgs(["status", "demo"])?.provider).toBe("demo")
  })

  it("takes token <provider> with --account VALUE, --json and --verbose", () => {
    expect(fastArgs(["token", "openai"])).toEqual({
      command: "token",
      provider: "openai",
      account: undefined,
      json: false,
      verbose: false
    })
    expect(fastArgs(["token", "--account", "work", "anthropic", "--json"])).toEqual({
      command: "token",
      provider: "anthropic",
      account: "work",
      json: true,
      verbose: false
    })
    expect(fastArgs(["token", "openai", "--account", "a@b.example"])?.command).toBe("token")
  })

  it("leaves every other command line to the whole CLI", () => {
    const refused: ReadonlyArray<ReadonlyArray<string>> = [
      [],
      ["login", "openai"],
      ["providers"],
      ["--verbose", "status"],
      ["Status"],
      // Usage errors and help, which the whole CLI prints.
      ["token"],
      ["token", "openai", "anthropic"],
      ["status", "openai", "anthropic"],
      ["status", "--help"],
      ["status", "-h"],
      ["token", "openai", "--version"],
      ["status", "--account", "x"],
      ["token", "openai", "--account"],
      ["token", "openai", "--account", "--json"],
      ["token", "openai", "--json", "--json"],
      ["token", "openai", "--account", "a", "--account", "b"],
      ["status", "--json=true"],
      ["token", "openai", "--account=work"],
      ["status", "--"],
      ["token", "--", "openai"],
      ["token", "openai", "--log-level", "debug"],
      // A word once read (by @effect/cli) as the value of a boolean flag before it.
      ["status", "--json", "yes"],
      ["token", "--verbose", "true", "openai"],
      ["status", "No"],
      // Words a parser might trim, and the empty word.
      ["token", " openai"],
      ["token", ""],
      // The demo server runs only in the whole CLI.
      ["token", "demo"],
      ["token", "--account", "x", "demo"]
    ]
    for (const argv of refused) expect([argv, fastArgs(argv)]).toEqual([argv, undefined])
  })
})
