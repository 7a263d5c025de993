/**
 * The `mcp` group in the command tree: how its command lines are read (a repeatable
 * `--scope`, ports and durations by the shared readers), and that its help and completion
 * come from the same tree as every other command's.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Either } from "effect"
import { root } from "../src/cli.js"
import { completionScript, nodes } from "../src/internal/completions.js"
import { helpText } from "../src/internal/help.js"
import { parse } from "../src/internal/parse.js"

const URL_ = "https://mcp.example.com/mcp"
const run = (args: ReadonlyArray<string>) => {
  const plan = Either.getOrThrow(parse(root, args))
  if (plan._tag !== "Run") throw new Error(`not a run: ${plan._tag}`)
  return plan
}
const refusal = (args: ReadonlyArray<string>) => {
  const r = parse(root, args)
  if (Either.isRight(r)) throw new Error(`read: ${args.join(" ")}`)
  return r.left.message
}

describe("agent-auth mcp", () => {
  it("mcp login: --scope may be given several times, in order; none is []; other flags once", () => {
    const plan = run(["mcp", "login", URL_, "--scope", "a:read", "--name", "tools", "--scope=b", "--port", "0", "--timeout", "90s", "--no-browser"])
    expect(plan.path).toEqual(["agent-auth", "mcp", "login"])
    expect(plan.values).toMatchObject({ url: URL_, scope: ["a:read", "b"], name: "tools", port: 0, noBrowser: true, json: false, clientId: undefined })
    expect(Duration.toMillis(plan.values.timeout as Duration.Duration)).toBe(90_000)
    expect(run(["mcp", "login", URL_]).values.scope).toEqual([])
    expect(refusal(["mcp", "login", URL_, "--name", "a", "--name", "b"])).toContain("--name is given twice")
    expect(refusal(["mcp", "login", URL_, "--scope"])).toContain("--scope needs a value")
    expect(refusal(["mcp", "login", URL_, "--scope", "a b"])).toContain("a scope is one word")
  })

  it("mcp login: ports 0–65535 and timeouts above zero, by the shared readers; the URL is http(s)", () => {
    expect(refusal(["mcp", "login", URL_, "--port", "65536"])).toContain("a port is a whole number from 0 to 65535")
    expect(run(["mcp", "login", URL_, "--port", "65535"]).values.port).toBe(65535)
    expect(refusal(["mcp", "login", URL_, "--timeout", "0s"])).toContain("more than zero")
    expect(refusal(["mcp", "login", "tools"])).toContain("an MCP server is named by its URL")
    expect(refusal(["mcp", "login", "ftp://mcp.example.com/"])).toContain("an MCP server is named by its URL")
    expect(refusal(["mcp", "login"])).toContain("needs <url>")
  })

  it("mcp list and mcp logout <name|url>; `mcp` alone is its help", () => {
    expect(run(["mcp", "list", "--json"]).values).toMatchObject({ json: true })
    expect(refusal(["mcp", "list", "extra"])).toContain("takes no arguments")
    expect(run(["mcp", "logout", URL_]).values.server).toBe(URL_)
    expect(run(["mcp", "logout", "tools"]).values.server).toBe("tools")
    const help = Either.getOrThrow(parse(root, ["mcp"]))
    expect(help._tag).toBe("Help")
    expect(refusal(["mcp", "lgin"])).toContain("Did you mean `agent-auth mcp login`?")
  })

  it("help: the group in the root's commands; mcp login's flags with --scope marked repeatable, and examples", () => {
    expect(helpText(["agent-auth"], root)).toMatch(/\n {2}mcp +MCP servers: sign in to the tools an agent calls\n/)
    const mcp = root.commands.find((c) => c.name === "mcp")!
    expect(helpText(["agent-auth", "mcp"], mcp)).toMatch(/login +sign in to an MCP server/)
    const login = mcp._tag === "Group" ? mcp.commands.find((c) => c.name === "login")! : mcp
    const text = helpText(["agent-auth", "mcp", "login"], login)
    expect(text).toContain("agent-auth mcp login <url> [flags]")
    expect(text).toMatch(/--scope SCOPE … +a scope to ask for; without one, the server's \(may be given several times\)/)
    for (const flag of ["--name NAME", "--client-id ID", "--no-browser", "--port N", "--timeout DURATION", "--json", "--verbose"]) expect(text).toContain(flag)
    expect(text.match(/\n {2}\$ agent-auth mcp login /g)?.length).toBe(2)
  })

  it("completion: mcp's subcommands, its login's value flags, and provider names for logout", () => {
    const byKey = new Map(nodes(root).map((n) => [n.key, n]))
    expect(byKey.get("mcp")?.subcommands.map((s) => s.name)).toEqual(["login", "list", "logout"])
    const login = byKey.get("mcp login")!
    expect(login.flags.filter((f) => f.value !== undefined).map((f) => f.name).sort()).toEqual(["--client-id", "--name", "--port", "--scope", "--timeout"])
    expect(byKey.get("mcp logout")?.positionals.map((p) => p._tag)).toEqual(["provider"])
    const bash = completionScript("bash", root, { node: "/usr/bin/node", script: "/opt/agent-auth.cjs", builtins: ["openai"] })
    expect(bash).toContain("'mcp login|--scope')")
  })
})
