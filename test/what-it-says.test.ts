/**
 * The table "What agent-auth says" in docs/user-guide.md, run: each row's situation is set
 * up here (by its name in the table), its command run as a user would, and its stderr and
 * exit code compared with the row. A row without a situation here, or a situation without
 * a row, fails. For every failure, the same command with `--json` must print the same
 * message on stderr and one `{"error":{tag,message,exitCode}}` object on stdout.
 */
import type { FakeAuthServer } from "@agent-auth/testing"
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { bundle, type CliResult, cliEnv, finish, nextEvent, run, start, tempHome } from "./support/cli.js"
import { freePort as freeDemoPort } from "./support/demo.js"
import { serveForFile } from "./support/fakeServer.js"

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile({ accessTokenTtl: "1 hour" }, (server) => (fake = server))

// -- the table ----------------------------------------------------------------------------

interface Row {
  readonly situation: string
  readonly command: string
  readonly says: string
  readonly exit: number
}

const guide = fs.readFileSync(new URL("../docs/user-guide.md", import.meta.url), "utf8")

const rows: ReadonlyArray<Row> = (() => {
  const section = guide.split(/^## What agent-auth says$/m)[1]?.split(/^## /m)[0] ?? ""
  return section.split("\n")
    .filter((line) => line.startsWith("| ") && !line.startsWith("| situation") && !line.startsWith("|---"))
    .map((line) => {
      const cells = line.slice(2, -2).split(" | ").map((c) => c.trim())
      expect(cells, line).toHaveLength(4)
      const [situation, command, says, exit] = cells as [string, string, string, string]
      return { situation, command: command.replace(/^`|`$/g, ""), says, exit: Number(exit) }
    })
})()

/** Words of a command as the table writes it (double quotes group). */
const words = (command: string): Array<string> =>
  [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!)

// -- situations ---------------------------------------------------------------------------

interface Setup {
  readonly home: string
  readonly env: Record<string, string>
  /** Substituted for <port> in the command and the message. */
  readonly port?: number
  readonly stdin?: string
  /** Run as this user (root can write anywhere). */
  readonly uid?: number
  /** Sends SIGINT once stderr matches. */
  readonly interruptAfter?: RegExp
  readonly cleanup?: () => void
  /** Before each run (the plain one and the --json one): what the first run changed, put back. */
  readonly prepare?: () => void
}

const plainHome = (): Setup => {
  const home = tempHome()
  return { home, env: cliEnv(home) }
}
const withConfig = (text: string): Setup => {
  const s = plainHome()
  fs.writeFileSync(path.join(s.home, "config.json"), text)
  return s
}
const acme = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ providers: { acme: { kind: "oidc", issuer: fake.issuer, clientId: fake.clientId, ...extra } } })

const storedKey = async (): Promise<Setup> => {
  const s = plainHome()
  const r = await run(["login", "anthropic", "--with-api-key"], s.env, "sk-ant-stored-0123456789abcdef")
  expect(r.code, r.stderr).toBe(0)
  return s
}

/** A port something else listens on, for the life of the row. */
const busyPort = async (): Promise<{ port: number; close: () => void }> => {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() }
}

/** A port nothing listens on. */
const closedPort = async (): Promise<number> => {
  const { port, close } = await busyPort()
  close()
  await new Promise((resolve) => setTimeout(resolve, 50))
  return port
}

const brokenConfig = () => withConfig("{ this is not json")

/** A credentials.json in a format version after ours; it must stay byte for byte. */
const newerFile = (): Setup => {
  const s = plainHome()
  const file = path.join(s.home, "credentials.json")
  const text = JSON.stringify({ version: 99, credentials: [{ provider: "anthropic", account: "default", somethingNew: true }] })
  fs.writeFileSync(file, text, { mode: 0o600 })
  return { ...s, cleanup: () => expect(fs.readFileSync(file, "utf8")).toBe(text) }
}

const situations: Record<string, () => Setup | Promise<Setup>> = {
  "a typo in a command": plainHome,
  "a flag the command does not have": plainHome,
  "`--log-level` (debug output is `--verbose`)": plainHome,
  "a flag without its value": plainHome,
  "a port that is not a number": plainHome,
  "a port out of range": plainHome,
  "a timeout of zero": plainHome,
  "an account name with a space": plainHome,
  "an API key typed as an argument": plainHome,
  "`login` with no provider and no terminal for a menu": plainHome,
  "an unknown provider": plainHome,
  "a broken config.json: help": brokenConfig,
  "a broken config.json: a command's help": brokenConfig,
  "a broken config.json: the version": brokenConfig,
  "a broken config.json: completion": brokenConfig,
  "a broken config.json: any other command": brokenConfig,
  "`AGENT_AUTH_HOME` is a file": () => {
    const dir = tempHome()
    const file = path.join(dir, "home")
    fs.writeFileSync(file, "")
    return { home: file, env: cliEnv(file) }
  },
  "nothing stored: `status` (its report is on stdout)": plainHome,
  "not logged in": plainHome,
  "an account that is not stored": storedKey,
  "`refresh` of a stored API key": storedKey,
  "`refresh` with `OPENAI_API_KEY` set": () => {
    const s = plainHome()
    return { ...s, env: { ...s.env, OPENAI_API_KEY: "sk-env-0123456789" } }
  },
  "`logout` with `OPENAI_API_KEY` set": () => {
    const s = plainHome()
    return { ...s, env: { ...s.env, OPENAI_API_KEY: "sk-env-0123456789" } }
  },
  "no key on stdin": () => ({ ...plainHome(), stdin: "" }),
  "`use` with nothing stored": plainHome,
  "an unreadable credentials file": async () => {
    const s = await storedKey()
    // The first run sets the unreadable file aside: the --json run gets another.
    return { ...s, prepare: () => fs.writeFileSync(path.join(s.home, "credentials.json"), "{ not json") }
  },
  "a credentials file from a newer agent-auth": () => newerFile(),
  "a credentials file from a newer agent-auth: storing a key": () => ({ ...newerFile(), stdin: "sk-ant-new-0123456789abcdef" }),
  // cliEnv passes no DBUS_SESSION_BUS_ADDRESS (nor XDG_RUNTIME_DIR): no session bus.
  "no system keychain (no D-Bus session bus), the default store `auto`: storing a key": () => {
    const s = plainHome()
    return { ...s, env: { ...s.env, AGENT_AUTH_STORE: "auto" }, stdin: "sk-ant-auto-0123456789abcdef" }
  },
  "no system keychain (no D-Bus session bus), `AGENT_AUTH_STORE=keyring`: storing a key": () => {
    const s = plainHome()
    return { ...s, env: { ...s.env, AGENT_AUTH_STORE: "keyring" }, stdin: "sk-ant-keyring-0123456789abcdef" }
  },
  "an issuer nothing answers at": async () => {
    const port = await closedPort()
    return { ...withConfig(JSON.stringify({ providers: { acme: { kind: "oidc", issuer: `http://127.0.0.1:${port}`, clientId: "cli" } } })), port }
  },
  "a busy port chosen with `--port`": async () => {
    const busy = await busyPort()
    return { ...withConfig(acme()), port: busy.port, cleanup: busy.close }
  },
  "a busy port fixed by the provider's registration": async () => {
    const busy = await busyPort()
    return { ...withConfig(acme({ redirect: { ports: [busy.port] } })), port: busy.port, cleanup: busy.close }
  },
  "a home that cannot be written, before any sign-in": () => {
    const s = withConfig(acme())
    // Readable by everyone, writable by its owner (root) only; the command runs as nobody.
    fs.chmodSync(s.home, 0o755)
    fs.chmodSync(path.join(s.home, "config.json"), 0o644)
    return { ...s, uid: 65534 }
  },
  "no answer from the browser in time": () => withConfig(acme()),
  "another program on the demo's port 14555": async () => {
    const server = net.createServer()
    // Held by someone else already is the same situation.
    const held = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false))
      server.listen(14555, "127.0.0.1", () => resolve(true))
    })
    return { ...plainHome(), cleanup: () => held && server.close() }
  },
  "Ctrl-C during a login": () => ({ ...withConfig(acme()), interruptAfter: /Open this URL/ }),
  "one unreadable login in credentials.json": async () => {
    const s = await storedKey()
    const more = await run(["login", "anthropic", "--with-api-key", "--account", "old"], s.env, "sk-ant-old-0123456789abcdef")
    expect(more.code, more.stderr).toBe(0)
    // The account "old" no longer decodes (a date that is not one); "default" still does.
    const file = path.join(s.home, "credentials.json")
    const doc = JSON.parse(fs.readFileSync(file, "utf8")) as { credentials: Array<Record<string, unknown>> }
    for (const c of doc.credentials) if (c.account === "old") c.obtainedAt = "yesterday"
    fs.writeFileSync(file, JSON.stringify(doc, null, 2))
    return s
  },
  "the demo's port held by another home's demo server": async () => {
    const port = await freeDemoPort()
    const other = tempHome()
    fs.writeFileSync(path.join(other, "config.json"), JSON.stringify({ providers: { demo: { issuer: `http://127.0.0.1:${port}` } } }))
    // A login in the other home, waiting for its browser, holds its demo server for the life of the row.
    const holder = start(["login", "demo", "--no-browser", "--json", "--timeout", "60s"], cliEnv(other))
    const held = finish(holder)
    await nextEvent(holder, "authorization_url")
    const s = withConfig(JSON.stringify({ providers: { demo: { issuer: `http://127.0.0.1:${port}` } } }))
    return {
      ...s,
      port,
      cleanup: () => {
        holder.kill("SIGKILL")
        void held.finally(() => fs.rmSync(other, { recursive: true, force: true }))
      }
    }
  }
}

// -- running a row ------------------------------------------------------------------------

const runAs = (args: ReadonlyArray<string>, setup: Setup): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    setup.prepare?.()
    const child = spawn(process.execPath, [bundle, ...args], {
      env: setup.env,
      stdio: ["pipe", "pipe", "pipe"],
      ...(setup.uid === undefined ? {} : { uid: setup.uid, gid: setup.uid })
    })
    let stdout = ""
    let stderr = ""
    let interrupted = false
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => {
      stderr += d
      if (setup.interruptAfter !== undefined && !interrupted && setup.interruptAfter.test(stderr)) {
        interrupted = true
        child.kill("SIGINT")
      }
    })
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
    if (setup.stdin !== undefined) child.stdin.write(setup.stdin)
    child.stdin.end()
  })

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** The row's message as a pattern over the whole of stderr: `…` is any text, placeholders filled in. */
const pattern = (says: string, setup: Setup): RegExp => {
  if (says === "(nothing)") return /^$/
  const filled = says.replaceAll("<home>", setup.home).replaceAll("<port>", String(setup.port ?? "<port>"))
  return new RegExp(`^${filled.split("…").map(escape).join("[\\s\\S]*")}$`)
}

describe("What agent-auth says (docs/user-guide.md)", () => {
  it("has a situation here for every row, and a row for every situation", () => {
    expect(rows.length).toBeGreaterThan(25)
    expect(rows.map((r) => r.situation).sort()).toEqual(Object.keys(situations).sort())
  })

  for (const row of rows) {
    it(`${row.situation}: \`${row.command}\` → exit ${row.exit}`, async () => {
      const setup = await situations[row.situation]!()
      try {
        const args = words(row.command.replaceAll("<port>", String(setup.port))).slice(1)
        expect(words(row.command)[0]).toBe("agent-auth")
        const r = await runAs(args, setup)
        const stderr = r.stderr.trim()
        expect({ stderr, code: r.code }).toEqual({ stderr: expect.stringMatching(pattern(row.says, setup)), code: row.exit })
        if (row.exit === 0 || row.exit === 1 && row.says === "(nothing)") return
        // The same failure with --json: the same stderr, and the error as one JSON object on stdout.
        const json = await runAs([...args, "--json"], setup)
        expect(json.code).toBe(row.exit)
        expect(json.stderr.trim()).toMatch(pattern(row.says, setup))
        const lines = json.stdout.trim().split("\n")
        const error = JSON.parse(lines.at(-1)!) as { error: { tag: string; message: string; exitCode: number } }
        expect(error.error.exitCode).toBe(row.exit)
        expect(typeof error.error.tag).toBe("string")
        expect(json.stderr.trim()).toContain(error.error.message)
      } finally {
        setup.cleanup?.()
      }
    })
  }
})
