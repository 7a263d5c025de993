/**
 * Small loopback HTTP servers that misbehave on purpose: one that records every request it
 * receives (the "thief" a redirect points at), one that answers with a redirect, one that
 * answers with a huge body. Each is a plain node:http server on 127.0.0.1, port 0.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

export interface Served {
  readonly port: number
  readonly origin: string
  /** Every request received so far, in order. */
  readonly received: Array<Received>
  readonly close: () => Promise<void>
}

export const serve = (
  answer: (req: Http.IncomingMessage, res: Http.ServerResponse, body: string) => void
): Promise<Served> =>
  new Promise((resolve, reject) => {
    const received: Array<Received> = []
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8")
        received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body })
        answer(req, res, body)
      })
    })
    server.once("error", reject)
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const port = (server.address() as AddressInfo).port
      resolve({
        port,
        origin: `http://127.0.0.1:${port}`,
        received,
        close: () =>
          new Promise((done) => {
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })

/** Receives anything and answers 200 `{}`: what a redirect must never reach. */
export const thief = () =>
  serve((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ access_token: "stolen", token_type: "Bearer", keys: [] }))
  })

/** Answers `/<status>/<rest>` with that redirect status to `target` + `/<rest>`. */
export const redirector = (target: string) =>
  serve((req, res) => {
    const m = /^\/(\d{3})(\/.*)?$/.exec(req.url ?? "")
    const status = m === null ? 307 : Number(m[1])
    res.writeHead(status, { location: `${target}${m?.[2] ?? "/"}` })
    res.end()
  })

/** JSON of about `bytes` bytes: a valid token response padded with a long field. */
export const hugeJson = (bytes: number): string =>
  JSON.stringify({ access_token: "a", token_type: "Bearer", keys: [], padding: "x".repeat(bytes) })

/** Answers every request with `hugeJson(bytes)`: with a Content-Length, or streamed in chunks without one. */
export const huge = (bytes: number) =>
  serve((req, res) => {
    const body = Buffer.from(hugeJson(bytes))
    if ((req.url ?? "").startsWith("/chunked")) {
      res.writeHead(200, { "content-type": "application/json" })
      let at = 0
      const step = () => {
        while (at < body.length) {
          const more = res.write(body.subarray(at, at + 64 * 1024))
          at += 64 * 1024
          if (!more) return void res.once("drain", step)
        }
        res.end()
      }
      res.on("error", () => {})
      step()
    } else {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(body.length) })
      res.on("error", () => {})
      res.end(body)
    }
  })
