import { describe, expect, it } from "@effect/vitest"
import { fastArgs } from "../src/internal/fastArgs.js"
import { SecretOnCommandLine } from "../src/internal/secretArgs.js"
import { looksLikeSecret, refusedArgument, secretArgument } from "../src/internal/secretWords.js"

const KEY = "sk-proj-CANARY-0123456789abcdef"

describe("a secret on the command line", () => {
  it("keys and tokens look like secrets; names, ids, paths and flags do not", () => {
    for (const secret of [KEY, "sk-ant-api03-abcdefghijklmnop", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "ya29.a0AfH6SMBxxxxxxxxxxxx", "AIzaSyA-0123456789abcdefghijk", "ghp_0123456789abcdefghijklmn"]) {
      expect({ secret, looks: looksLikeSecret(secret) }).toEqual({ secret, looks: true })
    }
    for (const word of ["openai", "anthropic", "sk-short", "ada@example.com", "/home/ada/key.txt", "--with-api-key", "status", "sk- with spaces and more words"]) {
      expect({ word, looks: looksLikeSecret(word) }).toEqual({ word, looks: false })
    }
  })

  it("secretArgument gives the 1-based position, also inside --flag=value, and nothing for a clean line", () => {
    expect(secretArgument(["login", "openai", "--with-api-key", KEY])).toBe(4)
    expect(secretArgument(["token", KEY])).toBe(2)
    expect(secretArgument(["login", "openai", `--account=${KEY}`])).toBe(3)
    expect(secretArgument(["login", "openai", "--with-api-key", "--verbose"])).toBeUndefined()
    expect(secretArgument([])).toBeUndefined()
  })

  it("by position: a word a command does not take, a provider that is not provider-shaped, --with-api-key=VALUE", () => {
    expect(refusedArgument(["login", "anthropic", "--with-api-key", "0123"])).toEqual({ position: 4, reason: "is not expected by `login`" })
    expect(refusedArgument(["login", "--with-api-key", "anthropic"])).toBeUndefined()
    expect(refusedArgument(["login", "gsk_AbC"])?.position).toBe(2)
    expect(refusedArgument(["login", "anthropic", "--with-api-key=x"])?.position).toBe(3)
    expect(refusedArgument(["use", "openai", "work"])).toBeUndefined()
    expect(refusedArgument(["use", "openai", "work", "extra"])?.position).toBe(4)
    expect(refusedArgument(["login", "acme", "--port", "1455", "--timeout", "5m", "--account", "Work Email", "--json", "yes"])).toBeUndefined()
    expect(refusedArgument(["import", "codex", "--from", "/home/ada/.codex/auth.json"])).toBeUndefined()
    expect(refusedArgument(["status"])).toBeUndefined()
    expect(refusedArgument(["providers"])).toBeUndefined()
    expect(looksLikeSecret("0123456789abcdef0123456789abcdef")).toBe(true)
    expect(looksLikeSecret("/home/ada/projects/agent-auth-2026/key.txt")).toBe(false)
  })

  it("an MCP server's URL stands where a provider goes (token, status, refresh, logout, mcp login|logout); a key in it is still refused", () => {
    const url = "https://mcp.example.com/mcp"
    for (const command of [["token"], ["status"], ["refresh"], ["logout"], ["mcp", "login"], ["mcp", "logout"]]) {
      expect({ command, refused: refusedArgument([...command, url]) }).toEqual({ command, refused: undefined })
      expect({ command, refused: refusedArgument([...command, "http://127.0.0.1:8080/mcp?v=2#x"]) }).toEqual({ command, refused: undefined })
    }
    expect(refusedArgument(["mcp", "login", url, "--name", "tools", "--scope", "a:read", "--scope", "b", "--client-id", "abc", "--port", "0", "--timeout", "5m", "--no-browser", "--json"])).toBeUndefined()
    expect(refusedArgument(["mcp", "list", "--json"])).toBeUndefined()
    const n = 3
    // A key anywhere in the URL: path, query value, fragment, percent-encoded, as user or password.
    for (const bad of [`${url}/${KEY}`, `${url}?key=${KEY}`, `${url}#${KEY}`, `${url}?k=${encodeURIComponent(KEY + "/x")}`, `https://u:${"p".repeat(3)}@mcp.example.com/mcp`, `https://0123456789abcdef0123456789abcdef.example.com/`]) {
      expect({ bad, at: refusedArgument(["mcp", "login", bad])?.position }).toEqual({ bad, at: n })
      expect({ bad, at: refusedArgument(["token", bad])?.position }).toEqual({ bad, at: 2 })
    }
    // Not a URL: a provider name as before; login and use take no URL.
    expect(refusedArgument(["login", url])?.position).toBe(2)
    expect(refusedArgument(["use", url, "work"])?.position).toBe(2)
    expect(refusedArgument(["token", "ftp://mcp.example.com/mcp"])?.position).toBe(2)
    expect(refusedArgument(["mcp", "login", url, "extra"])).toEqual({ position: 4, reason: "is not expected by `mcp login`" })
    expect(refusedArgument(["mcp", "list", "extra"])).toEqual({ position: 3, reason: "is not expected by `mcp list`" })
    expect(refusedArgument(["mcp", "login", "--scope", KEY])?.position).toBe(4)
    // The small bundle runs `token URL` and `status URL` (it resolves MCP servers too).
    expect(fastArgs(["token", url])).toEqual({ command: "token", provider: url, account: undefined, json: false, verbose: false })
    expect(fastArgs(["token", `${url}?key=${KEY}`])).toBeUndefined()
    expect(fastArgs(["mcp", "list"])).toBeUndefined()
  })

  it("a line with one never goes to the small bundle (whose errors could quote a provider name)", () => {
    expect(fastArgs(["status", KEY])).toBeUndefined()
    expect(fastArgs(["token", KEY])).toBeUndefined()
    expect(fastArgs(["token", "openai", "--account", KEY])).toBeUndefined()
    expect(fastArgs(["token", "openai"])).toBeDefined()
  })

  it("the refusal names the position and the way to pass a key, never the key (exit 2)", () => {
    const e = new SecretOnCommandLine({ position: 4 })
    expect(e.message).toContain("Argument 4")
    expect(e.message).toContain("--with-api-key < key.txt")
    expect(e.exitCode).toBe(2)
  })
})
