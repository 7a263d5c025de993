/**
 * The Node layer of `CallbackServer`: a plain `node:http` server on 127.0.0.1 that receives
 * one browser login's redirect (RFC 8252 §7.3), held by `Effect.acquireRelease` so it closes
 * — listening socket and every open connection — when the login's scope closes, however it
 * closes (success, failure, timeout, Ctrl-C).
 *
 * Request rules (DESIGN.md, security):
 * - `Host` must name the loopback at the bound port, else 421 (DNS rebinding).
 * - Only `GET` on exactly the redirect path takes part in the login: other paths 404,
 *   other methods 405. URLs over 8 KiB get 414; oversized headers get Node's 431.
 * - The `state` is compared in constant time. A missing or wrong state, a repeated
 *   parameter, a missing code, or anything after the login ended is answered 400 and changes
 *   nothing: a forged request can neither end nor hijack the login. Only the right state
 *   ends it: with `error=` as `AuthorizationDenied`, with `code` as success.
 * - Requests that arrive before `awaitCallback` is called get 400 too: the server does not
 *   yet know which state is legitimate, and holding unknown requests would let anyone queue
 *   a forged redirect ahead of the real one. Callers start waiting before opening the browser.
 * - Slow clients are bounded: headers within a few seconds, whole request within a few more,
 *   and a cap on concurrent connections.
 *
 * A busy port held by another agent-auth login (a login left waiting in another terminal)
 * is taken over, the way Codex's own login server does it:
 * - a server bound to a fixed port (1455, 1457: not port 0) records itself in a private
 *   per-user folder, `$TMPDIR/agent-auth-<uid>/login-<port>.json` (pid; removed when it
 *   closes). Only a port recorded there by a live process is ever contacted: a program that
 *   is not ours (Codex's login server, anything) is never sent a byte.
 * - every answer carries `X-Agent-Auth: callback`; a harmless `GET /` confirms the holder
 *   is ours (a pid can be reused) before it is asked to stop.
 * - `GET /cancel` with the login's cancel secret (`X-Agent-Auth-Cancel`, recorded in the
 *   private folder beside the pid) ends the pending login with `LoginCancelled` and stops
 *   listening at once. Without the secret it is 404, as any unknown path, and the login
 *   goes on: only a process that can read our private folder can end a login.
 *   The new login then retries the port for a short while (Effect's Clock), then the next
 *   port, then `PortUnavailable`.
 * - Security: `/cancel` can only end a login, never complete or redirect one (the code and
 *   state rules above are untouched), so the worst a caller can do is make the person start
 *   again. It is accepted only from the loopback, with a loopback `Host` (DNS rebinding),
 *   and only from programs: a request carrying browser headers (`Origin`, `Referer`,
 *   `Sec-Fetch-*`) is refused 403, so a web page open in the person's browser cannot cancel
 *   the login. Other local users cannot: the secret is in a 0600 file in a 0700 folder.
 *
 * Addresses: 127.0.0.1, and also ::1 on the same port when the redirect URI says
 * `localhost` (a browser may resolve it to either): both or neither, so another local user
 * cannot take `[::1]:port` and receive the redirect. A machine without an IPv6 loopback
 * (nobody can bind ::1 there) gets 127.0.0.1 alone.
 */
import { randomBytes, timingSafeEqual } from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { AuthorizationDenied, CallbackServer, LoginCancelled, PortUnavailable, Provider } from "@agent-auth/core"
import type { Scope } from "effect"
import { Deferred, Duration, Effect, Layer, Redacted, Runtime, Schedule } from "effect"
import { deniedPage, pageHeaders, rejectedPage, successPage } from "./internal/callbackPages.js"

/** Bounds on what one client may make the server hold. */
export interface Limits {
  /** Longest request target answered; longer gets 414. */
  readonly maxUrlLength: number
  /** Node's `maxHeaderSize` (request line + headers); over it Node answers 431. */
  readonly maxHeaderSize: number
  /** A connection must finish its headers within this, else Node answers 408 and drops it. */
  readonly headersTimeoutMs: number
  /** A whole request must arrive within this. Must not be below `headersTimeoutMs`. */
  readonly requestTimeoutMs: number
  /** How often Node checks the two timeouts above. */
  readonly checkIntervalMs: number
  readonly keepAliveTimeoutMs: number
  /** Connections beyond this are closed on arrival. */
  readonly maxConnections: number
  /** Bound (socket time) on each request to a busy port's holder when asking whether it is ours. */
  readonly takeoverProbeMs: number
  /** After asking our own stale login to stop, how long (Effect's Clock) to keep retrying its port. */
  readonly takeoverWaitMs: number
  /** The interval of those retries. */
  readonly takeoverPollMs: number
}

export const defaultLimits: Limits = {
  maxUrlLength: 8 * 1024,
  maxHeaderSize: 16 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  checkIntervalMs: 1_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 32,
  takeoverProbeMs: 500,
  takeoverWaitMs: 2_000,
  takeoverPollMs: 50
}

const bindHost = "127.0.0.1"
const bindHost6 = "::1"

/** The header carrying a login's cancel secret. */
export const cancelHeader = "x-agent-auth-cancel"

/** The header every answer of ours carries: how a new login recognises a stale one of ours. */
export const markerHeader = "x-agent-auth"
export const markerValue = "callback"

/** Where a login is asked to stop (Codex's login server uses the same path). */
export const cancelPath = "/cancel"

/** Headers only a browser sends: a request with any of them is a web page's, not a program's. */
const browserHeaders = ["origin", "referer", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user"]

const isLoopbackAddress = (address: string | undefined): boolean =>
  address === "127.0.0.1" || address === "::ffff:127.0.0.1" || address === "::1"

/** Provider-controlled text shown to a person: no escape sequences, control or bidi characters, bounded. */
const printable = (text: string, max: number): string => Provider.sanitize(text, max)

const sameState = (received: string, expected: string): boolean => {
  const a = Buffer.from(received, "utf8")
  const b = Buffer.from(expected, "utf8")
  // The length of a state is not secret; its content is.
  return a.length === b.length && timingSafeEqual(a, b)
}

const isLoopbackHost = (host: string | undefined, port: number): boolean => {
  if (host === undefined) return false
  const h = host.toLowerCase()
  return h === `127.0.0.1:${port}` || h === `localhost:${port}` || h === `[::1]:${port}`
}

type Phase =
  | { readonly _tag: "Idle" }
  | { readonly _tag: "Awaiting"; readonly state: string }
  | { readonly _tag: "Done" }

interface Bound {
  /** One server per address (127.0.0.1, and ::1 for `localhost`). */
  readonly servers: ReadonlyArray<Http.Server>
  readonly port: number
}

type BindResult = Bound | "in-use" | "forbidden" | "no-address"

/**
 * Tries one port on one address; a busy port is `"in-use"`, a forbidden one `"forbidden"`,
 * an address this machine does not have `"no-address"`, anything else is a defect.
 */
const bindPort = (port: number, limits: Limits, handler: Http.RequestListener, host: string = bindHost): Effect.Effect<BindResult> =>
  Effect.async<BindResult>((resume) => {
    const server = Http.createServer({
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      requireHostHeader: true
    }, handler)
    server.maxConnections = limits.maxConnections
    const onError = (error: NodeJS.ErrnoException) => {
      server.off("listening", onListening)
      resume(
        error.code === "EADDRINUSE"
          ? Effect.succeed("in-use" as const)
          : error.code === "EACCES"
          ? Effect.succeed("forbidden" as const)
          : error.code === "EADDRNOTAVAIL" || error.code === "EAFNOSUPPORT"
          ? Effect.succeed("no-address" as const)
          : Effect.die(error)
      )
    }
    const onListening = () => {
      server.off("error", onError)
      // A server error after binding must not crash the process; the login just waits or times out.
      server.on("error", () => {})
      const address = server.address() as AddressInfo
      resume(Effect.succeed({ servers: [server], port: address.port }))
    }
    server.once("error", onError)
    server.once("listening", onListening)
    server.listen({ host, port, exclusive: true, ...(host === bindHost6 ? { ipv6Only: true } : {}) })
  })

// ---------------------------------------------------------------- who holds a port

/** The private per-user folder where our login servers on fixed ports record themselves; undefined when it cannot be trusted. */
const registryDir = (): string | undefined => {
  const uid = typeof process.getuid === "function" ? process.getuid() : undefined
  const dir = NodePath.join(Os.tmpdir(), `agent-auth-${uid ?? "user"}`)
  try {
    Fs.mkdirSync(dir, { mode: 0o700 })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") return undefined
  }
  try {
    const st = Fs.lstatSync(dir)
    // Another user's folder (or one they can write to) could claim any port: not trusted.
    if (!st.isDirectory() || (st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid)) return undefined
    return dir
  } catch {
    return undefined
  }
}

const registryEntry = (dir: string, port: number) => NodePath.join(dir, `login-${port}.json`)

interface Registration {
  readonly pid: number
  readonly id: string
  /** The secret `GET /cancel` must carry to end this login. */
  readonly cancel?: string | undefined
}

const readRegistration = (dir: string, port: number): Registration | undefined => {
  try {
    const json = JSON.parse(Fs.readFileSync(registryEntry(dir, port), "utf8")) as Partial<Registration>
    return typeof json.pid === "number" && typeof json.id === "string"
      ? { pid: json.pid, id: json.id, cancel: typeof json.cancel === "string" ? json.cancel : undefined }
      : undefined
  } catch {
    return undefined
  }
}

/** The cancel secret a live login of ours on `port` recorded, if any. */
export const recordedCancelSecret = (port: number): string | undefined => {
  const dir = registryDir()
  return dir === undefined ? undefined : readRegistration(dir, port)?.cancel
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Records a server of ours on `port`; the effect it returns removes the record if it is still ours. Best effort. */
const register = (port: number, cancel: string): Effect.Effect<Effect.Effect<void>> =>
  Effect.sync(() => {
    const dir = registryDir()
    if (dir === undefined) return Effect.void
    const me: Registration = { pid: process.pid, id: randomBytes(9).toString("base64url"), cancel }
    const entry = registryEntry(dir, port)
    try {
      const tmp = `${entry}.${me.id}.tmp`
      Fs.writeFileSync(tmp, JSON.stringify(me), { mode: 0o600, flag: "wx" })
      Fs.renameSync(tmp, entry)
    } catch {
      return Effect.void
    }
    return Effect.sync(() => {
      if (readRegistration(dir, port)?.id !== me.id) return
      try {
        Fs.unlinkSync(entry)
      } catch {
        // already gone
      }
    })
  })

/** Whether a live process recorded a login server of ours on `port`. */
const recordedByUs = (port: number): Effect.Effect<boolean> =>
  Effect.sync(() => {
    const dir = registryDir()
    const found = dir === undefined ? undefined : readRegistration(dir, port)
    if (dir === undefined || found === undefined) return false
    if (isAlive(found.pid)) return true
    // Left by a process that died without closing its server.
    try {
      Fs.unlinkSync(registryEntry(dir, port))
    } catch {
      // already gone
    }
    return false
  })

/**
 * One GET to whatever listens on `port` (loopback), as a program: no browser headers.
 * `Some` with the status and whether the answer carries our marker; `None` when nothing
 * answered within `timeoutMs` of socket time (a holder that accepts and never answers).
 */
const askHolder = (
  port: number,
  path: string,
  timeoutMs: number,
  headers: Record<string, string> = {}
): Effect.Effect<{ readonly status: number; readonly ours: boolean } | undefined> =>
  Effect.async((resume) => {
    let done = false
    const settle = (value: { readonly status: number; readonly ours: boolean } | undefined) => {
      if (done) return
      done = true
      resume(Effect.succeed(value))
    }
    const req = Http.request({
      host: bindHost,
      port,
      path,
      method: "GET",
      agent: false,
      setHost: false,
      headers: { host: `${bindHost}:${port}`, ...headers },
      timeout: timeoutMs
    }, (res) => {
      settle({ status: res.statusCode ?? 0, ours: res.headers[markerHeader] === markerValue })
      res.resume()
      req.destroy()
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => settle(undefined))
    req.on("close", () => settle(undefined))
    req.end()
    return Effect.sync(() => req.destroy())
  })

/**
 * Stops listening and destroys every connection. `close()` alone drops only idle keep-alive
 * connections, and it stops the timer behind the header timeouts, so a half-sent request
 * would hold the server open indefinitely: `closeAllConnections()` destroys those too.
 */
const closeServer = ({ servers }: Bound): Effect.Effect<void> =>
  Effect.forEach(servers, (server) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
      server.closeAllConnections()
    }), { discard: true })

const listenWith = (limits: Limits) =>
(
  options: CallbackServer.ListenOptions
): Effect.Effect<CallbackServer.Listener, PortUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = (message: string) =>
      Runtime.runFork(runtime)(Effect.logDebug(message).pipe(Effect.annotateLogs("provider", options.provider)))
    const warn = (message: string) =>
      Runtime.runFork(runtime)(Effect.logWarning(`agent-auth: ${message}`).pipe(Effect.annotateLogs("provider", options.provider)))
    const result = yield* Deferred.make<CallbackServer.CallbackParams, AuthorizationDenied | LoginCancelled>()
    let phase: Phase = { _tag: "Idle" }
    // Set as soon as a port is bound; until then the Host check refuses everything.
    let boundPort = 0
    let listening: ReadonlyArray<Http.Server> = []
    // Whoever holds it can end this login (a newer login of ours taking the port over).
    const cancelSecret = randomBytes(32).toString("base64url")
    const dual = options.host.toLowerCase() === "localhost"

    const handler: Http.RequestListener = (req, res) => {
      const send = (status: number, html: string, extra: Record<string, string> = {}) => {
        res.writeHead(status, {
          ...pageHeaders,
          [markerHeader]: markerValue,
          "Content-Length": String(Buffer.byteLength(html)),
          ...extra
        })
        res.end(html)
      }
      const refuse = (status: number, title: string, reason: string, extra: Record<string, string> = {}) => {
        log(`callback request refused (${status}): ${reason}`)
        send(status, rejectedPage(title, reason), extra)
      }
      /** Ends the login: the answer goes out first, then the waiting fiber resumes. */
      const finish = (html: string, outcome: Effect.Effect<CallbackServer.CallbackParams, AuthorizationDenied | LoginCancelled>) => {
        phase = { _tag: "Done" }
        const complete = () => Deferred.unsafeDone(result, outcome)
        res.once("finish", complete)
        res.once("close", complete)
        send(200, html, { "Connection": "close" })
      }
      /** `GET /cancel` from a program on this machine: the login ends with LoginCancelled and the port is freed. */
      const cancel = () => {
        if (req.method !== "GET") {
          return refuse(405, "Method not allowed", "Only GET is answered here.", { "Allow": "GET" })
        }
        if (!isLoopbackAddress(req.socket.remoteAddress) || browserHeaders.some((h) => req.headers[h] !== undefined)) {
          return refuse(403, "Request refused", "A login can only be cancelled by a program on this computer, not by a web page.")
        }
        const secret = req.headers[cancelHeader]
        if (typeof secret !== "string" || !sameState(secret, cancelSecret)) {
          // As any unknown path: without the secret, there is nothing here, and the login goes on.
          return refuse(404, "Not found", "There is nothing here.")
        }
        if (phase._tag === "Done") {
          return refuse(409, "Login already finished", "This login has already finished; there is nothing to cancel.")
        }
        warn(`another program on this computer asked this login to stop (GET ${cancelPath} on port ${boundPort}), so that a new login can use the port`)
        finish(
          rejectedPage("Login cancelled", "A new login on this computer asked this one to stop. Nothing was stored; go on with the new login."),
          Effect.fail(new LoginCancelled({ provider: options.provider }))
        )
        // Free the port at once for the login that asked; open connections finish normally.
        for (const server of listening) server.close()
      }
      try {
        const url = req.url ?? "/"
        if (url.length > limits.maxUrlLength) {
          return refuse(414, "Request refused", "The request URL is too long.", { "Connection": "close" })
        }
        if (!isLoopbackHost(req.headers.host, boundPort)) {
          return refuse(421, "Request refused", "This server only answers requests addressed to the loopback interface.")
        }
        const q = url.indexOf("?")
        const path = q < 0 ? url : url.slice(0, q)
        if (path === cancelPath && path !== options.path) return cancel()
        if (path !== options.path) return refuse(404, "Not found", "There is nothing here.")
        if (req.method !== "GET") {
          return refuse(405, "Method not allowed", "Only GET is answered here.", { "Allow": "GET" })
        }
        if (phase._tag === "Idle") {
          return refuse(400, "No login waiting", "No agent-auth login is waiting for this answer yet.")
        }
        if (phase._tag === "Done") {
          return refuse(400, "Login already finished", "This login has already finished; this request changed nothing.")
        }
        const params = new URLSearchParams(q < 0 ? "" : url.slice(q + 1))
        const single = (name: string): string | undefined => params.getAll(name)[0]
        const repeated = ["state", "code", "error", "error_description", "iss"].some((name) =>
          params.getAll(name).length > 1
        )
        if (repeated) return refuse(400, "Request refused", "A parameter appears more than once.")
        const state = single("state")
        if (state === undefined || !sameState(state, phase.state)) {
          return refuse(
            400,
            "Request refused",
            "This answer does not belong to the login in progress (state mismatch); the login is still waiting."
          )
        }
        const error = single("error")
        if (error !== undefined) {
          const errorCode = printable(error, 128) || "unspecified_error"
          const rawDescription = single("error_description")
          const description = rawDescription === undefined ? undefined : printable(rawDescription, 512)
          log(`authorization denied by the provider: ${errorCode}`)
          return finish(
            deniedPage(options.provider, errorCode, description),
            Effect.fail(
              new AuthorizationDenied(
                description === undefined
                  ? { provider: options.provider, error: errorCode }
                  : { provider: options.provider, error: errorCode, description }
              )
            )
          )
        }
        const code = single("code")
        if (code === undefined || code === "") {
          return refuse(400, "Request refused", "The answer carries no authorization code; the login is still waiting.")
        }
        const iss = single("iss")
        log("authorization code received")
        return finish(
          successPage(options.provider),
          Effect.succeed({ code: Redacted.make(code), state, iss })
        )
      } catch {
        if (!res.headersSent) res.writeHead(500, pageHeaders)
        res.end()
      }
    }

    /**
     * A busy port: if its holder is a login server of ours, ask it to stop and retry the port
     * for a short while (Effect's Clock); anything else keeps the port and we move on.
     */
    const takeOver = (port: number): Effect.Effect<BindResult> =>
      Effect.gen(function*() {
        if (!(yield* recordedByUs(port))) return "in-use" as const
        const probe = yield* askHolder(port, "/", limits.takeoverProbeMs)
        if (probe === undefined || !probe.ours) return "in-use" as const
        const secret = recordedCancelSecret(port)
        if (secret === undefined) return "in-use" as const
        const answer = yield* askHolder(port, cancelPath, limits.takeoverProbeMs, { [cancelHeader]: secret })
        if (answer?.status === 200) {
          yield* Effect.logWarning(`agent-auth: port ${port} was held by another agent-auth login; it was asked to stop`)
        }
        return yield* bindAll(port).pipe(
          Effect.flatMap((r) => r === "in-use" ? Effect.fail(r) : Effect.succeed(r)),
          Effect.retry(
            Schedule.spaced(Duration.millis(limits.takeoverPollMs)).pipe(Schedule.upTo(Duration.millis(limits.takeoverWaitMs)))
          ),
          Effect.orElseSucceed(() => "in-use" as const)
        )
      })

    /**
     * 127.0.0.1, then ::1 on the same port for `localhost`: both or neither. A ::1 that is
     * taken makes the port unusable (the redirect could reach whoever holds it); a random
     * port (0) is drawn again a few times, since the other address's taker is a stranger.
     */
    const bindAll = (port: number): Effect.Effect<BindResult> =>
      Effect.gen(function*() {
        for (let attempt = 0; attempt < (port === 0 ? 5 : 1); attempt++) {
          const v4 = yield* bindPort(port, limits, handler)
          if (typeof v4 === "string" || !dual) return v4
          const v6 = yield* bindPort(v4.port, limits, handler, bindHost6)
          if (v6 === "no-address") return v4
          if (typeof v6 !== "string") return { servers: [...v4.servers, ...v6.servers], port: v4.port }
          yield* closeServer(v4)
          yield* Effect.logDebug(`port ${v4.port} is free on ${bindHost} but not on [${bindHost6}] (${v6}); not using it`)
          if (port !== 0) return v6
        }
        return "in-use" as const
      })

    const ports = options.ports.length === 0 ? [0] : options.ports
    const bound = yield* Effect.acquireRelease(
      Effect.gen(function*() {
        for (const port of ports) {
          let attempt = yield* bindAll(port)
          if (attempt === "in-use" && port !== 0) attempt = yield* takeOver(port)
          if (typeof attempt !== "string") {
            boundPort = attempt.port
            listening = attempt.servers
            return { ...attempt, unregister: port === 0 ? Effect.void : yield* register(attempt.port, cancelSecret) }
          }
          yield* Effect.logDebug(`port ${port} on ${dual ? `${bindHost} and [${bindHost6}]` : bindHost} is unavailable (${attempt})`)
        }
        return yield* new PortUnavailable({
          ports: [...ports],
          provider: options.provider,
          ...(dual ? { addresses: [bindHost, `[${bindHost6}]`] } : {})
        })
      }),
      (bound) =>
        Effect.suspend(() => {
          phase = { _tag: "Done" }
          return Deferred.interrupt(result)
        }).pipe(Effect.zipRight(closeServer(bound)), Effect.zipRight(bound.unregister))
    )

    const awaitCallback = (state: string): Effect.Effect<CallbackServer.CallbackParams, AuthorizationDenied | LoginCancelled> =>
      Effect.suspend(() => {
        if (phase._tag === "Idle") {
          phase = { _tag: "Awaiting", state }
        } else if (phase._tag === "Awaiting" && !sameState(state, phase.state)) {
          return Effect.dieMessage("CallbackServer: awaitCallback was called again with another state")
        }
        // Waiting again with the same state (after an interrupted wait) joins the same outcome.
        return Deferred.await(result)
      })

    return {
      redirectUri: `http://${options.host}:${bound.port}${options.path}`,
      awaitCallback
    } satisfies CallbackServer.Listener
  })

/** A `CallbackServer` with the given limits (tests shorten the timeouts). */
export const layerWith = (limits: Partial<Limits>): Layer.Layer<CallbackServer.CallbackServer> =>
  Layer.succeed(CallbackServer.CallbackServer, { listen: listenWith({ ...defaultLimits, ...limits }) })

export const layer: Layer.Layer<CallbackServer.CallbackServer> = layerWith({})
