/**
 * The Codex side of the OpenAI parity tests:
 * - `codexProblems`: the rules the Codex CLI applies when it reads `auth.json` (its
 *   `AuthDotJson` / `TokenData` serde rules, shared/PROVIDERS.md), written here
 *   independently of agent-auth's parser so a file we write is judged by Codex's rules,
 *   not by our own.
 * - auth.json fixtures in every shape Codex writes (`auth_mode` apikey / chatgpt / absent,
 *   with and without an API key, with fields we do not know).
 * - a recording proxy: forwards to the fake authorization server and keeps what each
 *   request carried, so a test can check a body on the server side.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

/** Codex's ID-token rule: three non-empty parts, the payload unpadded base64url JSON (an object). */
const jwtProblem = (jwt: string): string | undefined => {
  const parts = jwt.split(".")
  if (parts.length < 3 || parts.slice(0, 3).some((p) => p.length === 0)) return "not three non-empty parts"
  if (!/^[A-Za-z0-9_-]+$/.test(parts[1]!)) return "payload not unpadded base64url"
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"))
    return isObject(payload) ? undefined : "payload not a JSON object"
  } catch {
    return "payload not JSON"
  }
}

/** Codex's `AuthMode` values as they appear in auth.json. */
const authModes = ["apikey", "chatgpt", "chatgptAuthTokens"]

/**
 * Everything Codex would refuse (or misread) in an auth.json text; empty when Codex reads it.
 * `written` adds what Codex itself always writes (OPENAI_API_KEY present, even as null).
 */
export const codexProblems = (text: string, written = true): ReadonlyArray<string> => {
  const problems: Array<string> = []
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return ["not JSON"]
  }
  if (!isObject(json)) return ["not an object"]
  if (written && !("OPENAI_API_KEY" in json)) problems.push("OPENAI_API_KEY is missing (Codex always writes it, null when absent)")
  if (json.OPENAI_API_KEY !== undefined && json.OPENAI_API_KEY !== null && typeof json.OPENAI_API_KEY !== "string") {
    problems.push("OPENAI_API_KEY is neither a string nor null")
  }
  if (json.auth_mode !== undefined && json.auth_mode !== null && !authModes.includes(String(json.auth_mode))) {
    problems.push(`auth_mode ${JSON.stringify(json.auth_mode)} is not one Codex knows`)
  }
  if (json.tokens !== undefined && json.tokens !== null) {
    const t = json.tokens
    if (!isObject(t)) {
      problems.push("tokens is not an object")
    } else {
      if (typeof t.id_token !== "string") problems.push("tokens.id_token is not a string")
      else {
        const p = jwtProblem(t.id_token)
        if (p !== undefined) problems.push(`tokens.id_token: ${p}`)
      }
      if (typeof t.access_token !== "string") problems.push("tokens.access_token is not a string")
      if (typeof t.refresh_token !== "string") problems.push("tokens.refresh_token is not a string")
      if (t.account_id !== undefined && t.account_id !== null && typeof t.account_id !== "string") {
        problems.push("tokens.account_id is neither a string nor null")
      }
    }
  }
  if (json.last_refresh !== undefined && json.last_refresh !== null) {
    if (typeof json.last_refresh !== "string" || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(json.last_refresh)) {
      problems.push("last_refresh is not an RFC 3339 date")
    }
  }
  // What Codex would use: it must be there.
  const mode = (json.auth_mode as string | undefined) ?? (typeof json.OPENAI_API_KEY === "string" ? "apikey" : "chatgpt")
  if (mode === "apikey" && typeof json.OPENAI_API_KEY !== "string") problems.push("apikey mode without OPENAI_API_KEY")
  if (mode === "chatgpt" && !isObject(json.tokens)) problems.push("chatgpt mode without tokens")
  return problems
}

/** The mode bits of a file. */
export const modeOf = (file: string): number => fs.statSync(file).mode & 0o777

// ---------------------------------------------------------------------------------------
// fixtures

/** A JWT-shaped token with this payload (unsigned: Codex never checks the signature of its file). */
export const fakeJwt = (payload: Json): string =>
  `${Buffer.from(JSON.stringify({ alg: "RS256", typ: "JWT" })).toString("base64url")}.${
    Buffer.from(JSON.stringify(payload)).toString("base64url")
  }.c2lnbmF0dXJl`

export interface ChatGptTokens {
  readonly id_token: string
  readonly access_token: string
  readonly refresh_token: string
  readonly account_id?: string | null
}

/** Tokens for a file, with an ID token carrying OpenAI's claims. */
export const chatgptTokens = (options: {
  readonly accountId?: string
  readonly email?: string
  readonly plan?: string
  readonly org?: string
  readonly accessExp?: number
  readonly refresh?: string
  readonly access?: string
} = {}): ChatGptTokens => ({
  id_token: fakeJwt({
    sub: "user-codex",
    email: options.email ?? "codex@example.test",
    "https://api.openai.com/auth": {
      chatgpt_account_id: options.accountId ?? "acct-codex",
      chatgpt_plan_type: options.plan ?? "pro",
      organization_id: options.org ?? "org-codex"
    }
  }),
  access_token: options.access ?? fakeJwt({ exp: options.accessExp ?? 4_102_444_800, scp: ["openid", "offline_access"] }),
  refresh_token: options.refresh ?? "rt-codex-canary-0123456789",
  account_id: options.accountId ?? "acct-codex"
})

/** Every shape of auth.json Codex writes or has written, by name. */
export const codexShapes = (tokens: ChatGptTokens = chatgptTokens()) => ({
  /** `codex login` (ChatGPT), current versions. */
  chatgpt: { auth_mode: "chatgpt", OPENAI_API_KEY: null, tokens, last_refresh: "2026-01-01T00:00:00.123456Z" },
  /** ChatGPT login that also obtained an API key (older versions exchanged one). */
  chatgptWithKey: { auth_mode: "chatgpt", OPENAI_API_KEY: "sk-exchanged-key-0123456789", tokens, last_refresh: "2026-01-01T00:00:00Z" },
  /** Older versions: no auth_mode, tokens only. */
  absentTokens: { OPENAI_API_KEY: null, tokens, last_refresh: "2026-01-01T00:00:00Z" },
  /** Older versions: no auth_mode, an API key (Codex then uses the key, even beside tokens). */
  absentKey: { OPENAI_API_KEY: "sk-legacy-key-0123456789" },
  absentKeyAndTokens: { OPENAI_API_KEY: "sk-legacy-key-0123456789", tokens, last_refresh: "2026-01-01T00:00:00Z" },
  /** `codex login --with-api-key`. */
  apikey: { auth_mode: "apikey", OPENAI_API_KEY: "sk-apikey-login-0123456789" },
  /** A newer Codex's fields we do not know, at the top and inside tokens. */
  unknownFields: {
    auth_mode: "chatgpt",
    OPENAI_API_KEY: null,
    tokens: { ...tokens, future_token_field: { nested: [1, 2, 3] } },
    last_refresh: "2026-01-01T00:00:00Z",
    agent_identity: null,
    future_top_field: "kept"
  }
})

export const writeAuthJson = (dir: string, content: unknown, mode = 0o600): string => {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = path.join(dir, "auth.json")
  fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content, null, 2), { mode })
  fs.chmodSync(file, mode)
  return file
}

export const readJson = (file: string): Json => JSON.parse(fs.readFileSync(file, "utf8")) as Json

// ---------------------------------------------------------------------------------------
// recording proxy

export interface Recorded {
  readonly method: string
  readonly path: string
  readonly contentType: string
  readonly body: string
}

export interface RecordingProxy {
  readonly url: string
  readonly requests: Array<Recorded>
  readonly close: () => Promise<void>
}

/** A loopback proxy in front of `target` (the fake server) that records each request. */
export const recordingProxy = (target: string): Promise<RecordingProxy> =>
  new Promise((resolve, reject) => {
    const requests: Array<Recorded> = []
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const body = Buffer.concat(chunks)
        requests.push({
          method: req.method ?? "",
          path: req.url ?? "",
          contentType: req.headers["content-type"] ?? "",
          body: body.toString("utf8")
        })
        const headers = { ...req.headers }
        delete headers.host
        const upstream = http.request(new URL(req.url ?? "/", target), { method: req.method, headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
        })
        upstream.on("error", () => {
          res.writeHead(502)
          res.end()
        })
        upstream.end(body)
      })
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })
