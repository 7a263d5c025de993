/**
 * The completion scripts `agent-auth --completions SHELL` prints, run in the real shells:
 * bash (`complete -p`, then the function with COMP_WORDS/COMP_CWORD), zsh (registered with
 * compdef after compinit; the function run with `words`/`CURRENT`, compadd and _describe
 * recorded), fish (`complete -C`), each where installed. The CLI is run as
 * `node …/agent-auth.mjs` and is not on PATH: the script must hold the built-in names
 * itself and call back by absolute path only for names from config.json and the store.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bundle, cliEnv, run, tempHome } from "./support/cli.js"


/** A home whose config.json adds `acme`, with two stored API key accounts for anthropic; and the scripts from it. */
const setup = async () => {
  const home = tempHome()
  fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { acme: { kind: "oidc", issuer: "https://login.acme.example", clientId: "cli" } } }))
  // PATH without the CLI: only node's own folder is needed by nothing here (node is called by absolute path).
  const env = cliEnv(home, { PATH: "/usr/bin:/bin" })
  for (const account of ["default", "work"]) {
    const r = await run(["login", "anthropic", "--with-api-key", "--account", account], env, `sk-ant-${account}-key-0123456789`)
    expect(r.code, r.stderr).toBe(0)
  }
  const script = (shell: string) => {
    const r = spawnSync(process.execPath, [bundle, "--completions", shell], { env, encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toBe("")
    const file = path.join(home, `completion.${shell}`)
    fs.writeFileSync(file, r.stdout)
    return { file, text: r.stdout }
  }
  return { home, env, script }
}

describe("completion scripts", () => {
  it("hold the commands, flags and built-in provider names, and name the CLI by absolute path", async () => {
    const { script } = await setup()
    for (const shell of ["bash", "zsh", "fish"]) {
      const { text } = script(shell)
      for (const word of ["providers", "login", "status", "token", "refresh", "logout", "use", "import", "mcp", "demo", "openai", "anthropic", "no-browser", "with-api-key", "account", "timeout", "scope", "client-id"]) {
        expect({ shell, word, found: text.includes(word) }).toEqual({ shell, word, found: true })
      }
      expect(text).toContain(bundle)
      expect(text).toContain(process.execPath)
      // The hidden call back is not offered as a command.
      expect(text.replace(/__complete (providers|accounts)/g, "")).not.toContain("__complete")
    }
  })

  it("bash: registered for agent-auth; completes commands, a subcommand's flags, providers (built-in and configured), accounts and values", async () => {
    const { env, script } = await setup()
    const { file } = script("bash")
    const probe = `
source ${JSON.stringify(file)}
complete -p agent-auth
t() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _agent_auth; echo "[$*] => \${COMPREPLY[*]}"; }
t agent-auth ''
t agent-auth lo
t agent-auth login ''
t agent-auth login --
t agent-auth login acme --ti
t agent-auth token anthropic --account ''
t agent-auth login --port 1455 ''
t agent-auth login demo ''
t agent-auth import ''
t agent-auth mcp ''
t agent-auth mcp login https://mcp.example.com/mcp --
t agent-auth mcp logout ''
t agent-auth --completions ''
t agent-auth use anthropic ''
`
    const out = execFileSync("bash", ["--norc", "--noprofile", "-c", probe], { env, encoding: "utf8" })
    const answer = (line: string) => out.split("\n").find((l) => l.startsWith(`[${line}] => `))?.slice(line.length + 6)
    expect(out).toContain("complete -F _agent_auth agent-auth")
    expect(answer("agent-auth ")).toBe("providers login status token refresh logout use import mcp demo")
    expect(answer("agent-auth lo")).toBe("login logout")
    // A subcommand's argument is a provider, not a subcommand again; `acme` comes from config.json.
    expect(answer("agent-auth login ")).toBe("openai anthropic google vertex demo acme")
    expect(answer("agent-auth login --")).toBe("--no-browser --device --port --timeout --with-api-key --account --json --verbose --help")
    expect(answer("agent-auth login acme --ti")).toBe("--timeout")
    expect(answer("agent-auth token anthropic --account ")).toBe("default work")
    // A flag's value is skipped when counting arguments.
    expect(answer("agent-auth login --port 1455 ")).toBe("openai anthropic google vertex demo acme")
    // One provider only: nothing after it.
    expect(answer("agent-auth login demo ")).toBe("")
    expect(answer("agent-auth import ")).toBe("codex")
    expect(answer("agent-auth mcp ")).toBe("login list logout")
    expect(answer("agent-auth mcp login https://mcp.example.com/mcp --")).toBe("--name --scope --client-id --no-browser --port --timeout --json --verbose --help")
    expect(answer("agent-auth mcp logout ")).toBe("openai anthropic google vertex demo acme")
    expect(answer("agent-auth --completions ")).toBe("bash zsh fish")
    expect(answer("agent-auth use anthropic ")).toBe("default work")
  })

  it("bash: a broken config.json costs the configured names only, and prints nothing", async () => {
    const { home, env, script } = await setup()
    const { file } = script("bash")
    fs.writeFileSync(path.join(home, "config.json"), "{ broken")
    const probe = `source ${JSON.stringify(file)}; COMP_WORDS=(agent-auth login ''); COMP_CWORD=2; _agent_auth; echo "\${COMPREPLY[*]}"`
    const r = spawnSync("bash", ["--norc", "--noprofile", "-c", probe], { env, encoding: "utf8" })
    expect(r.stdout).toBe("openai anthropic google vertex demo\n")
    expect(r.stderr).toBe("")
    // The script itself is still printed with a broken config.json.
    const again = await run(["--completions", "bash"], env)
    expect(again.code).toBe(0)
    expect(again.stderr).toBe("")
  })

  it("zsh: registered with compdef after compinit; commands, flags, providers, accounts", async () => {
    const { env, script } = await setup()
    const { file } = script("zsh")
    const probe = `
autoload -U compinit && compinit -u -D
source ${JSON.stringify(file)}
print -r -- "registered: \${_comps[agent-auth]}"
compadd() { [[ "$1" == "--" ]] && shift; print -r -- "compadd: $*"; }
_describe() { local -a list; list=("\${(@P)\${@[-1]}}"); print -r -- "describe: \${(j: :)\${list[@]%%:*}}"; }
_files() { print -r -- "files"; }
t() { print -rn -- "[$*] "; words=("$@"); CURRENT=\${#words}; _agent_auth; }
t agent-auth ''
t agent-auth login ''
t agent-auth login --
t agent-auth token anthropic --account ''
t agent-auth import codex --from ''
`
    const out = execFileSync("zsh", ["-f", "-c", probe], { env, encoding: "utf8" })
    expect(out).toContain("registered: _agent_auth")
    expect(out).toContain("[agent-auth ] describe: providers login status token refresh logout use import mcp demo")
    expect(out).toContain("[agent-auth login ] compadd: openai anthropic google vertex demo acme")
    expect(out).toContain("[agent-auth login --] describe: --no-browser --device --port --timeout --with-api-key --account --json --verbose --help")
    expect(out).toContain("[agent-auth token anthropic --account ] compadd: default work")
    expect(out).toContain("[agent-auth import codex --from ] files")
  })

  it("fish: complete -C gives commands, flags, providers and accounts", async () => {
    const { env, script } = await setup()
    const { file } = script("fish")
    const names = (line: string) =>
      execFileSync("fish", ["--no-config", "-c", `source ${JSON.stringify(file)}; complete -C ${JSON.stringify(line)}`], { env, encoding: "utf8" })
        .split("\n").filter(Boolean).map((l) => l.split("\t")[0]).sort()
    expect(names("agent-auth ")).toEqual(["demo", "import", "login", "logout", "mcp", "providers", "refresh", "status", "token", "use"])
    expect(names("agent-auth login ")).toEqual(["acme", "anthropic", "demo", "google", "openai", "vertex"])
    expect(names("agent-auth login demo --p")).toEqual(["--port"])
    expect(names("agent-auth login --port 1455 ")).toEqual(["acme", "anthropic", "demo", "google", "openai", "vertex"])
    expect(names("agent-auth token anthropic --account ")).toEqual(["default", "work"])
  })
})
