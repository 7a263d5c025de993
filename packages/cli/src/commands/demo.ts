/**
 * `agent-auth demo`: a guided tour of every command against the embedded demo server, in
 * a throwaway home (or `--home DIR`, kept). Each step is this same CLI run as a child
 * process, exactly as a person would type it, with stdin at /dev/null; the tour prints
 * what each printed and checks its exit code. The tour never prints a whole token: the
 * one step that prints a secret (`token`) is captured and shown masked.
 */
import { AuthConfig, Domain, ExitCode } from "@agent-auth/core"
import { Duration, Effect, Either, Redacted } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { verbose } from "../internal/args.js"
import * as C from "../internal/command.js"
import { exitWith } from "../internal/exit.js"
import { demoProvider } from "../internal/demoProvider.js"
import { bold, dim, green, red, say } from "../internal/output.js"

interface Step {
  readonly args: ReadonlyArray<string>
  readonly expect: number
  /** What the step shows; said before it runs. */
  readonly why: string
  /** Its stdout is a secret: shown masked, and checked to be there. */
  readonly secret?: boolean
}

const steps: ReadonlyArray<Step> = [
  { args: ["login", "demo"], expect: 0, why: "Sign in. The demo's browser follows the sign-in page by itself, so this needs no clicks." },
  { args: ["status", "demo"], expect: 0, why: "What is stored, where, and when it expires (the token is masked)." },
  { args: ["token", "demo"], expect: 0, why: "A valid access token on stdout, for a script or an API call (masked here).", secret: true },
  { args: ["refresh", "demo"], expect: 0, why: "Refresh now (commands refresh by themselves when the token is due)." },
  { args: ["status", "demo"], expect: 0, why: "A new access token, a new expiry." },
  { args: ["logout", "demo"], expect: 0, why: "Revoke the login at the provider and delete it locally." },
  { args: ["status", "demo"], expect: ExitCode.AuthRequired, why: "Logged out: status says so, and exits 1." }
]

/** Whether nothing listens on 127.0.0.1:`port` (so the demo server can). */
const portFree = (port: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const server = net.createServer()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen(port, "127.0.0.1", () => server.close(() => resume(Effect.succeed(true))))
  })

/** A port free on 127.0.0.1 now. */
const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** The file this CLI runs from: the bundle (import.meta.url), or whatever node was given. */
const selfPath = (): string => {
  const here = import.meta.url.startsWith("file:") ? fileURLToPath(import.meta.url) : undefined
  return here !== undefined && /\.m?js$/.test(here) ? here : process.argv[1] ?? ""
}

interface Ran {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** One step as a child process. If the tour is interrupted (Ctrl-C, step timeout), the child is stopped too. */
const runChild = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Effect.Effect<Ran, Error> =>
  Effect.async<Ran, Error>((resume) => {
    const child = spawn(process.execPath, [selfPath(), ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")))
    child.once("error", (e) => resume(Effect.fail(e)))
    child.once("close", (code, signal) => resume(Effect.succeed({ code, signal, stdout, stderr })))
    // SIGTERM lets it save and clean up; SIGKILL if it has not ended 2 s later.
    return Effect.async<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done(Effect.void)
      const kill = setTimeout(() => child.kill("SIGKILL"), 2000)
      child.once("exit", () => {
        clearTimeout(kill)
        done(Effect.void)
      })
      child.kill("SIGTERM")
    })
  })

const print = (text: string) => (text.length === 0 ? Effect.void : say(text.replace(/\n$/, "")))

const whatNext = (kept: string | undefined) =>
  [
    "",
    bold("What next"),
    "  agent-auth providers                         the providers and how to sign in to each",
    "  agent-auth login openai                      sign in with your ChatGPT account (add --device over SSH)",
    "  agent-auth login anthropic --with-api-key    store an API key, read from stdin (never from the command line)",
    "  agent-auth status                            every credential: where it comes from, when it expires",
    "  agent-auth token openai                      a fresh token on stdout, for your scripts",
    "Your own logins live in ~/.agent-auth (or $AGENT_AUTH_HOME); the demo touched none of them.",
    ...(kept === undefined
      ? []
      : [`The demo's home is kept: try \`AGENT_AUTH_HOME=${kept} agent-auth login demo\`, then any command on \`demo\`.`])
  ].join("\n")

export const demo = C.make({
  name: "demo",
  summary: "a tour of every command against the embedded demo server (no network, no account)",
  description:
    "Runs login, status, token, refresh and logout against an authorization server embedded in agent-auth (127.0.0.1, no network, no account), each as this CLI would be typed, and shows what each printed. Your own logins are not touched.",
  flags: {
    home: C.value("home", {
      description: "run the tour in this AGENT_AUTH_HOME and keep it (default: a temporary one, removed)",
      placeholder: "DIR",
      completion: C.complete.file,
      parse: (text) => (text.length > 0 ? Either.right(text) : Either.left("a folder is not empty"))
    }),
    verbose
  },
  examples: [
    { command: "agent-auth demo", does: "the tour, in a temporary home" },
    { command: "agent-auth demo --home /tmp/try", does: "the tour, keeping its home to try more commands on `demo`" }
  ],
  run: (args) =>
    Effect.gen(function*() {
      const kept = args.home
      // A demo issuer moved in the person's config.json (14555 taken on this machine) moves the tour's too.
      let issuer = (yield* AuthConfig.AuthConfig).file.providers?.["demo"]?.issuer
      // The front door must open: with the demo's port taken (another program, another tour),
      // this tour's own server goes to a free port.
      const usual = Number(new URL(demoProvider.issuer!).port)
      if (issuer === undefined && kept === undefined && !(yield* portFree(usual))) {
        const port = yield* freePort
        issuer = `http://127.0.0.1:${port}`
        yield* say(`Port ${usual} is in use by another program; this tour's demo server uses port ${port}.`)
      }
      const home = yield* Effect.acquireRelease(
        Effect.sync(() => {
          if (kept === undefined) {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-demo-"))
            if (issuer !== undefined) {
              fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ providers: { demo: { issuer } } }), { mode: 0o600 })
            }
            return dir
          }
          const dir = path.resolve(kept)
          fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
          return dir
        }),
        (dir) => (kept === undefined ? Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })) : Effect.void)
      )
      // The demo's own home and the file store, whatever the person's settings say.
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        AGENT_AUTH_HOME: home,
        AGENT_AUTH_STORE: "file",
        ...(args.verbose ? { AGENT_AUTH_LOG: "debug" } : {})
      }
      yield* say(
        `${bold("agent-auth demo")}: every command, against an authorization server embedded in agent-auth ` +
          `(127.0.0.1, no network, no account).\nIts home, for this tour only: ${home}\n`
      )
      for (const step of steps) {
        yield* say(dim(`# ${step.why}`))
        yield* say(bold(`$ agent-auth ${step.args.join(" ")}`))
        const ran = yield* runChild(step.args, env).pipe(
          Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => new Error("it did not finish within 30 s") }),
          Effect.either
        )
        if (ran._tag === "Left") {
          yield* say(red(`The demo stopped: \`agent-auth ${step.args.join(" ")}\` failed to run (${ran.left.message}).`))
          return yield* exitWith(ExitCode.Provider)
        }
        const r = ran.right
        yield* print(r.stderr)
        const secret = r.stdout.trim()
        if (step.secret === true) {
          if (secret.length > 0) yield* say(`${Domain.mask(Redacted.make(secret))}   ${dim("(the token, masked by the tour)")}`)
        } else {
          yield* print(r.stdout)
        }
        const problem = r.code !== step.expect
          ? `exited ${r.code ?? r.signal}, expected ${step.expect}`
          : step.secret === true && (secret.length === 0 || secret.includes("\n"))
          ? "printed no token"
          : undefined
        if (problem !== undefined) {
          yield* say(red(`\nThe demo stopped: \`agent-auth ${step.args.join(" ")}\` ${problem}.`))
          return yield* exitWith(r.code !== null && r.code !== 0 && r.code !== step.expect ? r.code : ExitCode.Provider)
        }
        yield* say(dim(`(exit ${r.code})\n`))
      }
      yield* say(green("✓ The demo ran every step as expected."))
      yield* say(whatNext(kept === undefined ? undefined : home))
    }).pipe(Effect.scoped)
})
