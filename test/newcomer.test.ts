/**
 * The newcomer's script: what a person new to agent-auth types first, in a fresh home, as
 * shell pipelines. Run in CI with the other suites.
 *   agent-auth --help; agent-auth providers | grep openai; agent-auth demo;
 *   agent-auth status --json | node -e 'JSON.parse(…)' (stderr empty);
 *   and with a broken config.json, --help still works.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bundle, tempHome } from "./support/cli.js"

/** One line of shell, `agent-auth` being the built CLI run by node (it is not on PATH). */
const sh = (line: string, home: string) => {
  const r = spawnSync("bash", ["-o", "pipefail", "-c", `agent-auth() { ${JSON.stringify(process.execPath)} ${JSON.stringify(bundle)} "$@"; }\n${line}`], {
    env: { PATH: process.env.PATH ?? "", HOME: home, AGENT_AUTH_HOME: path.join(home, ".agent-auth"), NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 120_000
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe("a newcomer's first commands", () => {
  it("help, providers | grep, the demo, status --json | JSON.parse, and help despite a broken config.json", () => {
    const home = tempHome()

    const help = sh("agent-auth --help", home)
    expect(help.code).toBe(0)
    expect(help.stderr).toBe("")
    expect(help.stdout).toContain("agent-auth login")
    expect(help.stdout).toContain("Examples")
    expect(help.stdout).not.toContain("\u001b[")

    const grep = sh("agent-auth providers | grep openai", home)
    expect(grep.code).toBe(0)
    expect(grep.stdout).toMatch(/^openai\s+OpenAI/)

    const demo = sh("agent-auth demo", home)
    expect(demo.code, demo.stderr).toBe(0)
    expect(demo.stderr).toContain("The demo ran every step as expected")

    const status = sh(`agent-auth status --json | node -e 'const d = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(Array.isArray(d.providers))'`, home)
    // Nothing is stored (the demo used its own home): status exits 1, and the pipeline with it.
    expect(status.code).toBe(1)
    expect(status.stdout).toBe("true\n")
    expect(status.stderr).toBe("")

    fs.mkdirSync(path.join(home, ".agent-auth"), { recursive: true })
    fs.writeFileSync(path.join(home, ".agent-auth", "config.json"), "{ broken")
    const broken = sh("agent-auth --help && agent-auth login --help && agent-auth --version", home)
    expect(broken.code).toBe(0)
    expect(broken.stderr).toBe("")
    expect(broken.stdout).toContain("agent-auth login — ")
    const failing = sh("agent-auth status", home)
    expect(failing.code).toBe(2)
    expect(failing.stderr.trim().split("\n")).toHaveLength(1)
    expect(failing.stderr).toContain("config.json")
  })
})
