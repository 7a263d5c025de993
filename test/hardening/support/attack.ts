/**
 * What an attacker (or a browser) does on the wire in the hardening suite: raw HTTP
 * requests with any Host header, half-sent requests, and the checks that no secret
 * shows where it must not.
 */
import { expect } from "@effect/vitest"
import * as fs from "node:fs"
import * as Http from "node:http"
import * as net from "node:net"
import * as path from "node:path"
import { tempHome } from "../../support/cli.js"

export interface Reply {
  readonly status: number
  readonly body: string
}

/** A GET (or other method) to 127.0.0.1:`port` with exactly this Host header; fails after 5 s. */
export const raw = (
  port: number,
  target: string,
  options: { readonly host?: string; readonly method?: string; readonly headers?: Record<string, string>; readonly address?: string } = {}
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = Http.request({
      host: options.address ?? "127.0.0.1",
      port,
      path: target,
      method: options.method ?? "GET",
      agent: false,
      setHost: false,
      headers: { host: options.host ?? `127.0.0.1:${port}`, ...options.headers }
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
    })
    req.setTimeout(5_000, () => req.destroy(new Error(`no answer to ${options.method ?? "GET"} ${target.slice(0, 40)}`)))
    req.on("error", reject)
    req.end()
  })

/**
 * The status line's code of what the server sent back to `request` (raw bytes on a socket),
 * read until it closes the connection. A server may answer and drop the socket while the
 * request is still being written (Node does for oversize headers): the write's error is
 * ignored, the answer is not; no status line received is a rejection.
 */
export const rawStatus = (port: number, request: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const chunks: Array<Buffer> = []
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("error", () => {}) // EPIPE / ECONNRESET after the server answered: judged by what was read
    socket.setTimeout(5_000, () => socket.destroy())
    socket.on("close", () => {
      const head = /^HTTP\/1\.[01] (\d{3}) /.exec(Buffer.concat(chunks).toString("latin1"))
      head === null ? reject(new Error(`no HTTP answer to ${request.slice(0, 40)}`)) : resolve(Number(head[1]))
    })
    socket.write(request)
  })

/** Whether a TCP connection to `address:port` is accepted. */
export const connects = (port: number, address = "127.0.0.1"): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ port, host: address })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** A slow-loris: a request line and some headers, never the blank line that ends them. */
export const slowLoris = (port: number, target: string): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" })
    socket.once("error", reject)
    socket.once("connect", () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `)
      resolve(socket)
    })
  })

/** Resolves when the socket is closed by the other side (or after `ms`, with false). */
export const closedWithin = (socket: net.Socket, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    if (socket.destroyed || socket.readyState === "closed") return resolve(true)
    const timer = setTimeout(() => resolve(false), ms)
    socket.once("close", () => {
      clearTimeout(timer)
      resolve(true)
    })
    socket.resume()
  })

/** The browser's part, one hop at a time: where the authorization server sends the browser back to. */
export const authorize = async (authorizationUrl: string): Promise<string> => {
  const response = await fetch(authorizationUrl, { redirect: "manual" })
  const location = response.headers.get("location")
  expect(response.status).toBe(302)
  expect(location).not.toBeNull()
  return new URL(location!, authorizationUrl).toString()
}

/** A temporary AGENT_AUTH_HOME with `acme` at the given issuer; removed by `cleanup`. */
export const homes = () => {
  const made: Array<string> = []
  return {
    acme: (issuer: string, clientId: string, extra: Record<string, unknown> = {}) => {
      const home = tempHome()
      made.push(home)
      fs.writeFileSync(
        path.join(home, "config.json"),
        JSON.stringify({
          providers: {
            acme: { kind: "oidc", issuer, clientId, apiBaseUrl: "https://llm.acme.example/v1", ...extra }
          }
        })
      )
      return home
    },
    cleanup: () => made.forEach((h) => fs.rmSync(h, { recursive: true, force: true }))
  }
}

/**
 * Fails when `text` holds `secret`, or any 12-character piece of it: a masked token
 * (4 + 4 characters) passes, a truncated or wrapped one does not.
 */
export const expectNoSecret = (text: string, secret: string, where: string) => {
  const window = Math.min(12, secret.length)
  for (let i = 0; i + window <= secret.length; i++) {
    const piece = secret.slice(i, i + window)
    if (text.includes(piece)) {
      throw new Error(`${where} holds a piece of a secret (${JSON.stringify(piece.slice(0, 4))}… at offset ${i})`)
    }
  }
}
