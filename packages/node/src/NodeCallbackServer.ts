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
 */
import { timingSafeEqual } from "node:crypto"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { AuthorizationDenied, CallbackServer, PortUnavailable } from "@agent-auth/core"
import type { Scope } from "effect"
import { Deferred, Effect, Layer, Redacted, Runtime } from "effect"
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
}

export const defaultLimits: Limits = {
  maxUrlLength: 8 * 1024,
  maxHeaderSize: 16 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  checkIntervalMs: 1_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 32
}

const bindHost = "127.0.0.1"

/** Provider-controlled text shown to a person: printable ASCII only (no control or bidi characters), bounded. */
const printable = (text: string, max: number): string => text.replace(/[^\x20-\x7e]/g, "").slice(0, max)

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
  readonly server: Http.Server
  readonly port: number
}

type BindResult = Bound | "unavailable"

/** Tries one port; a busy (or forbidden) port is `"unavailable"`, anything else is a defect. */
const bindPort = (port: number, limits: Limits, handler: Http.RequestListener): Effect.Effect<BindResult> =>
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
        error.code === "EADDRINUSE" || error.code === "EACCES"
          ? Effect.succeed("unavailable" as const)
          : Effect.die(error)
      )
    }
    const onListening = () => {
      server.off("error", onError)
      // A server error after binding must not crash the process; the login just waits or times out.
      server.on("error", () => {})
      const address = server.address() as AddressInfo
      resume(Effect.succeed({ server, port: address.port }))
    }
    server.once("error", onError)
    server.once("listening", onListening)
    server.listen({ host: bindHost, port, exclusive: true })
  })

/**
 * Stops listening and destroys every connection. `close()` alone drops only idle keep-alive
 * connections, and it stops the timer behind the header timeouts, so a half-sent request
 * would hold the server open indefinitely: `closeAllConnections()` destroys those too.
 */
const closeServer = ({ server }: Bound): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  })

const listenWith = (limits: Limits) =>
(
  options: CallbackServer.ListenOptions
): Effect.Effect<CallbackServer.Listener, PortUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = (message: string) =>
      Runtime.runFork(runtime)(Effect.logDebug(message).pipe(Effect.annotateLogs("provider", options.provider)))
    const result = yield* Deferred.make<CallbackServer.CallbackParams, AuthorizationDenied>()
    let phase: Phase = { _tag: "Idle" }
    // Set as soon as a port is bound; until then the Host check refuses everything.
    let boundPort = 0

    const handler: Http.RequestListener = (req, res) => {
      const send = (status: number, html: string, extra: Record<string, string> = {}) => {
        res.writeHead(status, { ...pageHeaders, "Content-Length": String(Buffer.byteLength(html)), ...extra })
        res.end(html)
      }
      const refuse = (status: number, title: string, reason: string, extra: Record<string, string> = {}) => {
        log(`callback request refused (${status}): ${reason}`)
        send(status, rejectedPage(title, reason), extra)
      }
      /** Ends the login: the answer goes out first, then the waiting fiber resumes. */
      const finish = (html: string, outcome: Effect.Effect<CallbackServer.CallbackParams, AuthorizationDenied>) => {
        phase = { _tag: "Done" }
        const complete = () => Deferred.unsafeDone(result, outcome)
        res.once("finish", complete)
        res.once("close", complete)
        send(200, html, { "Connection": "close" })
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

    const ports = options.ports.length === 0 ? [0] : options.ports
    const bound = yield* Effect.acquireRelease(
      Effect.gen(function*() {
        for (const port of ports) {
          const attempt = yield* bindPort(port, limits, handler)
          if (attempt !== "unavailable") {
            boundPort = attempt.port
            return attempt
          }
          yield* Effect.logDebug(`port ${port} on ${bindHost} is unavailable`)
        }
        return yield* new PortUnavailable({ ports: [...ports], provider: options.provider })
      }),
      (bound) =>
        Effect.suspend(() => {
          phase = { _tag: "Done" }
          return Deferred.interrupt(result)
        }).pipe(Effect.zipRight(closeServer(bound)))
    )

    const awaitCallback = (state: string): Effect.Effect<CallbackServer.CallbackParams, AuthorizationDenied> =>
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
