import * as Http from "node:http"
import * as Net from "node:net"
import { AuthorizationDenied, CallbackServer, PortUnavailable } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Redacted, Scope } from "effect"
import * as NodeCallbackServer from "../src/NodeCallbackServer.js"

const STATE = "Zk3q9s8xVb2mT1nA0pLw7cYr4eUo6iHd5gJf3kQz8aB"
const CODE = "code-canary-7f3a9c1e"
const PATH = "/callback"

// ---------------------------------------------------------------- socket helpers (loopback only)

/** Fails after `ms` of real time, so a broken server fails the test instead of hanging it. */
const within = <A>(ms: number, what: string, promise: Promise<A>): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
    promise.then(
      (a) => {
        clearTimeout(timer)
        resolve(a)
      },
      (e) => {
        clearTimeout(timer)
        reject(e)
      }
    )
  })

/** A port held by the test itself on 127.0.0.1 until the scope closes. */
const holdPort: Effect.Effect<number, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<Net.Server>((resolve, reject) => {
      const server = Net.createServer()
      server.once("error", reject)
      server.listen({ host: "127.0.0.1", port: 0 }, () => resolve(server))
    })
  ),
  (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

/** A port that was free a moment ago. */
const freePort: Effect.Effect<number> = Effect.scoped(holdPort)

interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

const request = (
  port: number,
  path: string,
  options: { readonly method?: string; readonly host?: string; readonly headers?: Record<string, string> } = {}
): Effect.Effect<Reply> =>
  Effect.promise(() =>
    within(
      5_000,
      `${options.method ?? "GET"} ${path.slice(0, 40)}`,
      new Promise<Reply>((resolve, reject) => {
        const req = Http.request({
          host: "127.0.0.1",
          port,
          path,
          method: options.method ?? "GET",
          agent: false,
          setHost: false,
          headers: { host: options.host ?? `127.0.0.1:${port}`, ...options.headers }
        }, (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (chunk: Buffer) => chunks.push(chunk))
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }))
        })
        req.on("error", reject)
        req.end()
      })
    )
  )

const connect = (host: string, port: number): Promise<Net.Socket> =>
  new Promise<Net.Socket>((resolve, reject) => {
    const socket = Net.connect({ host, port })
    socket.once("connect", () => {
      socket.off("error", reject)
      resolve(socket)
    })
    socket.once("error", reject)
  })

/** The error code of a failed connection attempt, or "connected". */
const connectOutcome = (host: string, port: number): Effect.Effect<string> =>
  Effect.promise(() =>
    within(
      5_000,
      `connecting to ${host}:${port}`,
      connect(host, port).then(
        (socket) => {
          socket.destroy()
          return "connected"
        },
        (error: NodeJS.ErrnoException) => error.code ?? "error"
      )
    )
  )

/** Reads one HTTP response (headers + Content-Length body) from a raw socket. */
const readResponse = (socket: Net.Socket): Promise<string> =>
  new Promise<string>((resolve, reject) => {
    let data = ""
    const onData = (chunk: Buffer) => {
      data += chunk.toString("utf8")
      const end = data.indexOf("\r\n\r\n")
      if (end < 0) return
      const length = Number(/content-length: *(\d+)/i.exec(data.slice(0, end))?.[1] ?? "0")
      if (Buffer.byteLength(data.slice(end + 4)) >= length) {
        socket.off("data", onData)
        resolve(data)
      }
    }
    socket.on("data", onData)
    socket.once("error", reject)
  })

const closed = (socket: Net.Socket): Promise<void> =>
  socket.destroyed && socket.readyState === "closed"
    ? Promise.resolve()
    : new Promise<void>((resolve) => socket.once("close", () => resolve()))

// ---------------------------------------------------------------- listener helpers

const listen = (ports: ReadonlyArray<number> = [0], host = "127.0.0.1") =>
  Effect.gen(function*() {
    const server = yield* CallbackServer.CallbackServer
    const listener = yield* server.listen({ provider: "demo", host, path: PATH, ports })
    const port = Number(new URL(listener.redirectUri).port)
    return { listener, port }
  })

/** Starts waiting for STATE in a fiber, before any request is sent (as a login does before opening the browser). */
const awaiting = (listener: CallbackServer.Listener) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(listener.awaitCallback(STATE))
    yield* Effect.yieldNow()
    return fiber
  })

const callback = (query: Record<string, string>) => `${PATH}?${new URLSearchParams(query).toString()}`

/** The waiting fiber has not finished: the request did not end the login. */
const expectStillWaiting = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function*() {
    const poll = yield* Fiber.poll(fiber)
    expect(poll._tag).toBe("None")
  })

const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, NodeCallbackServer.layer)

// ---------------------------------------------------------------- tests

describe("NodeCallbackServer: binding", () => {
  it.scoped("a busy port fails with PortUnavailable naming it", () =>
    provide(Effect.gen(function*() {
      const busy = yield* holdPort
      const error = yield* Effect.flip(listen([busy]))
      expect(error).toBeInstanceOf(PortUnavailable)
      expect(error.ports).toEqual([busy])
      expect(error.provider).toBe("demo")
      expect(error.message).toContain(String(busy))
    })))

  it.scoped("falls back to the next port when the first is busy", () =>
    provide(Effect.gen(function*() {
      const busy = yield* holdPort
      const free = yield* freePort
      const { listener, port } = yield* listen([busy, free])
      expect(port).toBe(free)
      expect(listener.redirectUri).toBe(`http://127.0.0.1:${free}${PATH}`)
    })))

  it.scoped("port 0 binds a real port, written into the redirect URI with the requested host", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen([0], "localhost")
      expect(port).toBeGreaterThan(0)
      expect(listener.redirectUri).toBe(`http://localhost:${port}${PATH}`)
      expect(yield* connectOutcome("127.0.0.1", port)).toBe("connected")
    })))

  it.scoped("binds 127.0.0.1 only: other loopback addresses are refused", () =>
    provide(Effect.gen(function*() {
      const { port } = yield* listen()
      expect(yield* connectOutcome("127.0.0.1", port)).toBe("connected")
      // A wildcard (0.0.0.0 or ::) bind would accept these; 127.0.0.2 is loopback on Linux.
      expect(yield* connectOutcome("127.0.0.2", port)).not.toBe("connected")
      expect(yield* connectOutcome("::1", port)).not.toBe("connected")
    })))
})

describe("NodeCallbackServer: the login", () => {
  it.scoped("the right state and code complete the login; the page says so and echoes neither", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      const reply = yield* request(port, callback({ code: CODE, state: STATE, iss: "http://127.0.0.1:9/" }))
      expect(reply.status).toBe(200)
      expect(reply.body).toContain("close this tab")
      expect(reply.body).not.toContain(CODE)
      expect(reply.body).not.toContain(STATE)
      expect(reply.body).not.toMatch(/<script|src=|href=/i)
      expect(reply.headers["cache-control"]).toBe("no-store")
      expect(reply.headers["content-security-policy"]).toContain("default-src 'none'")
      expect(reply.headers["referrer-policy"]).toBe("no-referrer")
      const params = yield* Fiber.join(fiber)
      expect(Redacted.value(params.code)).toBe(CODE)
      expect(String(params.code)).not.toContain(CODE)
      expect(params.state).toBe(STATE)
      expect(params.iss).toBe("http://127.0.0.1:9/")
    })))

  it.scoped("a wrong state is answered 400 and the right callback still completes", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      const wrong = yield* request(port, callback({ code: "attacker-code", state: "not-the-state" }))
      expect(wrong.status).toBe(400)
      expect(wrong.body).not.toContain("not-the-state")
      // Same length, one character off: still refused.
      const nearly = yield* request(port, callback({ code: "attacker-code", state: STATE.slice(0, -1) + "X" }))
      expect(nearly.status).toBe(400)
      const missing = yield* request(port, callback({ code: "attacker-code" }))
      expect(missing.status).toBe(400)
      yield* expectStillWaiting(fiber)
      const right = yield* request(port, callback({ code: CODE, state: STATE }))
      expect(right.status).toBe(200)
      const params = yield* Fiber.join(fiber)
      expect(Redacted.value(params.code)).toBe(CODE)
    })))

  it.scoped("error= with the right state fails with AuthorizationDenied; the text is sanitised and escaped", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      const reply = yield* request(
        port,
        callback({ error: "access_denied", error_description: "The user said <b>no</b>\u0007\u202e!", state: STATE })
      )
      expect(reply.status).toBe(200)
      expect(reply.body).toContain("Login failed")
      expect(reply.body).toContain("access_denied")
      expect(reply.body).toContain("&lt;b&gt;no&lt;/b&gt;")
      expect(reply.body).not.toContain("<b>no</b>")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error).toBeInstanceOf(AuthorizationDenied)
      expect(error).toMatchObject({ provider: "demo", error: "access_denied", description: "The user said <b>no</b>!" })
    })))

  it.scoped("error= with a wrong or missing state is a 400 and the login keeps waiting", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      expect((yield* request(port, callback({ error: "access_denied", state: "forged" }))).status).toBe(400)
      expect((yield* request(port, callback({ error: "access_denied" }))).status).toBe(400)
      yield* expectStillWaiting(fiber)
      expect((yield* request(port, callback({ code: CODE, state: STATE }))).status).toBe(200)
      expect(Redacted.value((yield* Fiber.join(fiber)).code)).toBe(CODE)
    })))

  it.scoped("the right state without a code is a 400 and the login keeps waiting", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      expect((yield* request(port, callback({ state: STATE }))).status).toBe(400)
      expect((yield* request(port, callback({ state: STATE, code: "" }))).status).toBe(400)
      yield* expectStillWaiting(fiber)
      expect((yield* request(port, callback({ code: CODE, state: STATE }))).status).toBe(200)
      yield* Fiber.join(fiber)
    })))

  it.scoped("a repeated parameter is a 400", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      expect((yield* request(port, `${PATH}?state=${STATE}&state=${STATE}&code=x`)).status).toBe(400)
      expect((yield* request(port, `${PATH}?state=${STATE}&code=a&code=b`)).status).toBe(400)
      yield* expectStillWaiting(fiber)
    })))

  it.scoped("a replay after success is a 400 and changes nothing", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      expect((yield* request(port, callback({ code: CODE, state: STATE }))).status).toBe(200)
      const params = yield* Fiber.join(fiber)
      const replay = yield* request(port, callback({ code: "second-code", state: STATE }))
      expect(replay.status).toBe(400)
      const denial = yield* request(port, callback({ error: "access_denied", state: STATE }))
      expect(denial.status).toBe(400)
      // Waiting again returns the original outcome.
      const again = yield* listener.awaitCallback(STATE)
      expect(Redacted.value(again.code)).toBe(CODE)
      expect(Redacted.value(params.code)).toBe(CODE)
    })))

  it.scoped("a callback before anyone awaits is a 400 and does not pre-empt the real one", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      expect((yield* request(port, callback({ code: "early", state: STATE }))).status).toBe(400)
      const fiber = yield* awaiting(listener)
      expect((yield* request(port, callback({ code: CODE, state: STATE }))).status).toBe(200)
      expect(Redacted.value((yield* Fiber.join(fiber)).code)).toBe(CODE)
    })))
})

describe("NodeCallbackServer: refused requests", () => {
  it.scoped("another path is 404, another method 405; neither ends the login", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      const query = `?${new URLSearchParams({ code: CODE, state: STATE })}`
      expect((yield* request(port, `/other${query}`)).status).toBe(404)
      expect((yield* request(port, `${PATH}/${query}`)).status).toBe(404)
      const post = yield* request(port, `${PATH}${query}`, { method: "POST" })
      expect(post.status).toBe(405)
      expect(post.headers["allow"]).toBe("GET")
      yield* expectStillWaiting(fiber)
    })))

  it.scoped("a non-loopback Host is 421 (DNS rebinding); loopback names are accepted", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      const evil = yield* request(port, callback({ code: CODE, state: STATE }), { host: "evil.example" })
      expect(evil.status).toBe(421)
      const evilPort = yield* request(port, callback({ code: CODE, state: STATE }), { host: `evil.example:${port}` })
      expect(evilPort.status).toBe(421)
      yield* expectStillWaiting(fiber)
      const ok = yield* request(port, callback({ code: CODE, state: STATE }), { host: `localhost:${port}` })
      expect(ok.status).toBe(200)
      yield* Fiber.join(fiber)
    })))

  it.scoped("an oversize URL is 414 and oversize headers 431; the login keeps waiting", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      const longUrl = `${callback({ code: CODE, state: STATE })}&pad=${"a".repeat(9 * 1024)}`
      expect((yield* request(port, longUrl)).status).toBe(414)
      const big = yield* request(port, callback({ code: CODE, state: STATE }), { headers: { "x-big": "b".repeat(20_000) } })
      expect(big.status).toBe(431)
      yield* expectStillWaiting(fiber)
      expect((yield* request(port, callback({ code: CODE, state: STATE }))).status).toBe(200)
      yield* Fiber.join(fiber)
    })))

  it.scoped("a slow-loris connection does not block the real callback", () =>
    provide(Effect.gen(function*() {
      const { listener, port } = yield* listen()
      const fiber = yield* awaiting(listener)
      const slow = yield* Effect.acquireRelease(
        Effect.promise(() => connect("127.0.0.1", port)),
        (socket) => Effect.sync(() => socket.destroy())
      )
      slow.write(`GET ${callback({ code: "slow", state: STATE })} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: a`)
      expect((yield* request(port, callback({ code: CODE, state: STATE }))).status).toBe(200)
      expect(Redacted.value((yield* Fiber.join(fiber)).code)).toBe(CODE)
    })))

  it.scopedLive("a connection that never finishes its headers is dropped after the headers timeout", () =>
    Effect.gen(function*() {
      const { port } = yield* listen()
      const slow = yield* Effect.acquireRelease(
        Effect.promise(() => connect("127.0.0.1", port)),
        (socket) => Effect.sync(() => socket.destroy())
      )
      let received = ""
      slow.on("data", (chunk: Buffer) => (received += chunk.toString("utf8")))
      slow.write(`GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: a`)
      yield* Effect.promise(() => within(3_000, "the slow connection to be dropped", closed(slow)))
      expect(received).toMatch(/^HTTP\/1\.1 408/)
    }).pipe(
      Effect.provide(NodeCallbackServer.layerWith({ headersTimeoutMs: 200, requestTimeoutMs: 400, checkIntervalMs: 50 }))
    ))
})

describe("NodeCallbackServer: closing", () => {
  // Live clock: closing must finish promptly, not after Node's own request timeouts.
  it.scopedLive("closing the scope stops listening and destroys keep-alive and half-sent connections", () =>
    provide(Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { port } = yield* Scope.extend(listen(), scope)
      const keepAlive = yield* Effect.promise(() => connect("127.0.0.1", port))
      keepAlive.on("error", () => {})
      keepAlive.write(`GET /nothing HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
      const response = yield* Effect.promise(() => within(5_000, "the 404", readResponse(keepAlive)))
      expect(response).toMatch(/^HTTP\/1\.1 404/)
      // A connection in the middle of a request is not idle: server.close() alone would wait for it.
      const halfSent = yield* Effect.promise(() => connect("127.0.0.1", port))
      halfSent.on("error", () => {})
      halfSent.write(`GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: a`)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      expect(keepAlive.destroyed).toBe(false)
      expect(halfSent.destroyed).toBe(false)
      // Closing is uninterruptible: wait for it from outside so a hang fails here, not at vitest's timeout.
      const closing = yield* Effect.forkDaemon(Scope.close(scope, Exit.void))
      yield* Fiber.join(closing).pipe(
        Effect.timeoutFail({ duration: "1 second", onTimeout: () => new Error("closing the listener took too long") })
      )
      yield* Effect.promise(() => within(1_000, "the keep-alive socket to close", closed(keepAlive)))
      yield* Effect.promise(() => within(1_000, "the half-sent socket to close", closed(halfSent)))
      expect(yield* connectOutcome("127.0.0.1", port)).toBe("ECONNREFUSED")
    })))

  it.scoped("interrupting the waiting login (Ctrl-C, timeout) closes the server", () =>
    provide(Effect.gen(function*() {
      const server = yield* CallbackServer.CallbackServer
      const bound = yield* Deferred.make<number>()
      const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const listener = yield* server.listen({ provider: "demo", host: "127.0.0.1", path: PATH, ports: [0] })
        yield* Deferred.succeed(bound, Number(new URL(listener.redirectUri).port))
        return yield* listener.awaitCallback(STATE)
      })))
      const port = yield* Deferred.await(bound)
      expect(yield* connectOutcome("127.0.0.1", port)).toBe("connected")
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(yield* connectOutcome("127.0.0.1", port)).toBe("ECONNREFUSED")
    })))
})
