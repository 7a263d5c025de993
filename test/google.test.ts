/**
 * Google: Vertex AI through Application Default Credentials (an `authorized_user` file and
 * a `service_account` key generated here), against the fake authorization server on a
 * 127.0.0.1 socket (its JWT bearer grant checks the assertion's iss, sub, aud, exp and
 * signature), and the Gemini API key; model calls go to a local server standing in for
 * Google's APIs through `AuthHttpClient`. Nothing leaves loopback.
 */
import { AuthConfig, AuthHttpClient, CredentialResolver, ProviderRegistry, Refresher, TokenStore } from "@agent-auth/core"
import type { Domain } from "@agent-auth/core"
import { FakeAuthServer } from "@agent-auth/testing"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import * as jose from "jose"
import { cliEnv, run, tempHome } from "./support/cli.js"
import { serveForFile } from "./support/fakeServer.js"

// The service account's key pair, made for this run; the fake server knows only the public half.
const serviceAccountEmail = "agent@proj-1.iam.gserviceaccount.com"
const pair = await jose.generateKeyPair("RS256", { extractable: true })
const privatePem = await jose.exportPKCS8(pair.privateKey)
const publicPem = await jose.exportSPKI(pair.publicKey)
const otherPem = await jose.exportPKCS8((await jose.generateKeyPair("RS256", { extractable: true })).privateKey)

let fake: FakeAuthServer.FakeAuthServerShape
serveForFile(
  {
    clients: [FakeAuthServer.confidentialClient],
    accessTokenTtl: "1 hour",
    serviceAccounts: [{ clientEmail: serviceAccountEmail, publicKey: publicPem }]
  },
  (server) => (fake = server)
)

/** The stand-in for Google's model APIs: records each request's path and headers. */
interface Seen {
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
}
const seen: Array<Seen> = []
let api: http.Server | undefined
let apiOrigin = ""
beforeAll(async () => {
  api = http.createServer((req, res) => {
    seen.push({ path: req.url ?? "", headers: req.headers })
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ candidates: [] }))
  })
  await new Promise<void>((resolve) => api!.listen(0, "127.0.0.1", resolve))
  apiOrigin = `http://127.0.0.1:${(api.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise<void>((resolve) => (api === undefined ? resolve() : api.close(() => resolve())))
})

let dir = ""
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? "/tmp"), "agent-auth-google-"))
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** Writes an ADC file; returns its path. */
const adcFile = (name: string, content: unknown): string => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content), { mode: 0o600 })
  return file
}

const authorizedUser = async (quotaProject = "quota-proj-7") => {
  const issued = await Effect.runPromise(fake.issueTokens({ clientId: FakeAuthServer.confidentialClient.clientId }))
  return {
    refreshToken: issued.refresh_token,
    file: adcFile(`user-${Math.random().toString(36).slice(2)}.json`, {
      type: "authorized_user",
      client_id: FakeAuthServer.confidentialClient.clientId,
      client_secret: FakeAuthServer.confidentialClient.clientSecret,
      refresh_token: issued.refresh_token,
      quota_project_id: quotaProject
    })
  }
}

const serviceAccount = (key = privatePem, name = "sa.json") =>
  adcFile(name, {
    type: "service_account",
    project_id: "proj-1",
    private_key_id: "key-1",
    private_key: key,
    client_email: serviceAccountEmail,
    client_id: "1234567890",
    // What the key file says; config.json points the provider at the fake server instead.
    token_uri: "https://oauth2.googleapis.com/token"
  })

/** The resolve stack over real HTTP (fetch), the ADC file and the rest of the environment given. */
const services = (env: Record<string, string>, providers: Record<string, unknown> = {}) => {
  const config = AuthConfig.layerWith({
    home: dir,
    store: "memory",
    file: {
      providers: {
        vertex: {
          endpoints: { token: fake.endpoints.token },
          apiBaseUrl: `${apiOrigin}/v1/projects/{project}/locations/{location}/publishers/google/models`
        },
        google: { apiKeyBaseUrl: `${apiOrigin}/v1beta` },
        ...providers
      } as NonNullable<AuthConfig.ConfigFile["providers"]>
    }
  })
  const base = Layer.mergeAll(config, FetchHttpClient.layer, NodeFileSystem.layer, TokenStore.layerMemory)
  const resolver = CredentialResolver.layer.pipe(
    Layer.provideMerge(Refresher.layer),
    Layer.provideMerge(ProviderRegistry.layer),
    Layer.provideMerge(base)
  )
  return {
    layer: resolver,
    configProvider: ConfigProvider.fromMap(new Map(Object.entries(env)))
  }
}

const inEnv = <A, E>(
  env: Record<string, string>,
  body: Effect.Effect<A, E, CredentialResolver.CredentialResolver | Refresher.Refresher | HttpClient.HttpClient>,
  providers: Record<string, unknown> = {}
) => {
  const s = services(env, providers)
  return body.pipe(Effect.provide(s.layer), Effect.withConfigProvider(s.configProvider))
}

const counts = () => Effect.runPromise(fake.counts)
const headerOf = (c: Domain.Credential, name: string) => {
  const v = c.headers[name]
  return v === undefined ? undefined : Redacted.value(v)
}

describe("vertex: Application Default Credentials", () => {
  it("an authorized_user file: a refresh grant at the token endpoint, x-goog-user-project from its quota project", async () => {
    const { file, refreshToken } = await authorizedUser()
    const before = await counts()
    const credential = await Effect.runPromise(
      inEnv({ GOOGLE_APPLICATION_CREDENTIALS: file, GOOGLE_CLOUD_PROJECT: "proj-1", GOOGLE_CLOUD_LOCATION: "europe-west4" }, Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve("vertex")))
    )
    expect((await counts()).refreshToken - before.refreshToken).toBe(1)
    expect(credential._tag).toBe("Bearer")
    const token = Redacted.value(Domain_secret(credential))
    expect(await Effect.runPromise(fake.isActive(token))).toBe(true)
    expect(token).not.toBe(refreshToken)
    expect(headerOf(credential, "Authorization")).toBe(`Bearer ${token}`)
    expect(headerOf(credential, "x-goog-user-project")).toBe("quota-proj-7")
    expect(credential.baseUrl).toBe(`${apiOrigin}/v1/projects/proj-1/locations/europe-west4/publishers/google/models`)
    expect(credential.source).toEqual({ _tag: "Adc", path: file, type: "authorized_user", account: "gcloud user (quota project quota-proj-7)" })
    // The file was read, not copied anywhere: it is unchanged.
    expect(JSON.parse(fs.readFileSync(file, "utf8")).refresh_token).toBe(refreshToken)
  })

  it("a service_account key (made in this test): a JWT bearer grant the fake server verifies", async () => {
    const file = serviceAccount()
    const before = await counts()
    const credential = await Effect.runPromise(
      inEnv({ GOOGLE_APPLICATION_CREDENTIALS: file }, Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve("vertex")))
    )
    expect((await counts()).jwtBearer - before.jwtBearer).toBe(1)
    expect(await Effect.runPromise(fake.isActive(Redacted.value(Domain_secret(credential))))).toBe(true)
    // The project from the key, the default location.
    expect(credential.baseUrl).toBe(`${apiOrigin}/v1/projects/proj-1/locations/us-central1/publishers/google/models`)
    expect(headerOf(credential, "x-goog-user-project")).toBeUndefined()
    expect(credential.source).toMatchObject({ _tag: "Adc", type: "service_account", account: serviceAccountEmail })
  })

  it("an assertion signed with another key is refused by the server: AdcInvalid naming the file, no token", async () => {
    const file = serviceAccount(otherPem, "sa-other-key.json")
    const before = await counts()
    const error = await Effect.runPromise(
      Effect.flip(inEnv({ GOOGLE_APPLICATION_CREDENTIALS: file }, Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve("vertex"))))
    )
    expect((await counts()).jwtBearer - before.jwtBearer).toBe(1)
    expect(error._tag).toBe("AdcInvalid")
    expect(error.message).toContain(file)
    expect(error.message).toContain("invalid_grant")
    expect(error.message).not.toContain("PRIVATE KEY")
  })

  it("100 concurrent resolves, and 100 concurrent forced ones: 1 grant each", async () => {
    const file = serviceAccount(privatePem, "sa-storm.json")
    const before = await counts()
    const tokens = await Effect.runPromise(
      inEnv(
        { GOOGLE_APPLICATION_CREDENTIALS: file },
        Effect.flatMap(CredentialResolver.CredentialResolver, (r) =>
          Effect.gen(function*() {
            const plain = yield* Effect.all(Array.from({ length: 100 }, () => r.resolve("vertex")), { concurrency: "unbounded" })
            const afterPlain = (yield* fake.counts).jwtBearer
            const forced = yield* Effect.all(
              Array.from({ length: 100 }, () => r.resolve("vertex", { forceRefresh: true })),
              { concurrency: "unbounded" }
            )
            return { plain, forced, afterPlain }
          }))
      )
    )
    expect(tokens.afterPlain - before.jwtBearer).toBe(1)
    expect((await counts()).jwtBearer - before.jwtBearer).toBe(2)
    expect(new Set(tokens.plain.map((c) => Redacted.value(Domain_secret(c)))).size).toBe(1)
    expect(new Set(tokens.forced.map((c) => Redacted.value(Domain_secret(c)))).size).toBe(1)
  })

  it("the credential reaches a model call through AuthHttpClient: the Vertex URL, Bearer, x-goog-user-project", async () => {
    const { file } = await authorizedUser("billing-proj")
    seen.length = 0
    const status = await Effect.runPromise(
      inEnv(
        { GOOGLE_APPLICATION_CREDENTIALS: file, GOOGLE_CLOUD_PROJECT: "proj-9", GOOGLE_CLOUD_LOCATION: "global" },
        Effect.gen(function*() {
          const client = yield* HttpClient.HttpClient
          const resolver = yield* CredentialResolver.CredentialResolver
          const credential = yield* resolver.resolve("vertex")
          const response = yield* client.execute(
            HttpClientRequest.post(`${credential.baseUrl}/gemini-2.5-flash:generateContent`).pipe(
              HttpClientRequest.bodyUnsafeJson({ contents: [] })
            )
          )
          return { status: response.status, token: Redacted.value(Domain_secret(credential)) }
        }).pipe(Effect.provide(AuthHttpClient.layer("vertex").pipe(Layer.provideMerge(services({}).layer))), Effect.scoped)
      )
    )
    expect(status.status).toBe(200)
    expect(seen).toHaveLength(1)
    expect(seen[0]!.path).toBe("/v1/projects/proj-9/locations/global/publishers/google/models/gemini-2.5-flash:generateContent")
    expect(seen[0]!.headers["authorization"]).toBe(`Bearer ${status.token}`)
    expect(seen[0]!.headers["x-goog-user-project"]).toBe("billing-proj")
  })

  it("Google's own URLs without overrides: the regional host, and aiplatform.googleapis.com for global", async () => {
    const file = serviceAccount(privatePem, "sa-urls.json")
    const base = (location: string) =>
      Effect.runPromise(
        inEnv(
          { GOOGLE_APPLICATION_CREDENTIALS: file, GOOGLE_CLOUD_LOCATION: location },
          Effect.map(Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve("vertex")), (c) => c.baseUrl),
          { vertex: { endpoints: { token: fake.endpoints.token } } }
        )
      )
    expect(await base("us-east5")).toBe("https://us-east5-aiplatform.googleapis.com/v1/projects/proj-1/locations/us-east5/publishers/google/models")
    expect(await base("global")).toBe("https://aiplatform.googleapis.com/v1/projects/proj-1/locations/global/publishers/google/models")
  })

  const failures: ReadonlyArray<readonly [string, () => string, string]> = [
    ["missing", () => path.join(dir, "absent.json"), "no such file"],
    ["not JSON", () => adcFile("broken.json", "{ \"type\": \"authorized_user\", \"refresh_token\": \"1//secret-rt"), "it is not JSON"],
    ["without its refresh token", () => adcFile("partial.json", { type: "authorized_user", client_id: "c", client_secret: "s-secret" }), "refresh_token"],
    ["of an unknown type", () => adcFile("external.json", { type: "external_account", audience: "x" }), "external_account"]
  ]
  for (const [what, make, reason] of failures) {
    it(`an ADC file ${what}: AdcInvalid naming the file and the gcloud command, no secret`, async () => {
      const file = make()
      const error = await Effect.runPromise(
        Effect.flip(inEnv({ GOOGLE_APPLICATION_CREDENTIALS: file }, Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve("vertex"))))
      )
      expect(error._tag).toBe("AdcInvalid")
      expect(error.message).toContain(file)
      expect(error.message).toContain(reason)
      expect(error.message).toContain("gcloud auth application-default login")
      expect("exitCode" in error && error.exitCode).toBe(1)
      for (const secret of ["1//secret-rt", "s-secret"]) expect(error.message).not.toContain(secret)
    })
  }

  it("no GOOGLE_APPLICATION_CREDENTIALS and no gcloud file: AdcInvalid naming gcloud's default path", async () => {
    const error = await Effect.runPromise(
      Effect.flip(inEnv({ HOME: dir }, Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve("vertex"))))
    )
    expect(error._tag).toBe("AdcInvalid")
    expect(error.message).toContain(path.join(dir, ".config/gcloud/application_default_credentials.json"))
    expect(error.message).toContain("gcloud auth application-default login")
  })
})

describe("google: the Gemini API key", () => {
  for (const variable of ["GEMINI_API_KEY", "GOOGLE_API_KEY"]) {
    it(`${variable} reaches a model call as x-goog-api-key, and nothing else carries it`, async () => {
      seen.length = 0
      const key = `AIza-canary-${variable}`
      const status = await Effect.runPromise(
        inEnv(
          { [variable]: key },
          Effect.gen(function*() {
            const client = yield* HttpClient.HttpClient
            const response = yield* client.execute(HttpClientRequest.post(`${apiOrigin}/v1beta/models/gemini-2.5-flash:generateContent`))
            return response.status
          }).pipe(Effect.provide(AuthHttpClient.layer("google").pipe(Layer.provideMerge(services({}).layer))), Effect.scoped)
        )
      )
      expect(status).toBe(200)
      expect(seen).toHaveLength(1)
      expect(seen[0]!.headers["x-goog-api-key"]).toBe(key)
      expect(seen[0]!.headers["authorization"]).toBeUndefined()
    })
  }
})

describe("the CLI", () => {
  it("status shows the ADC file and the service account; login vertex explains gcloud; token gets a token", async () => {
    const home = tempHome()
    const file = serviceAccount(privatePem, "sa-cli.json")
    fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { vertex: { endpoints: { token: fake.endpoints.token } } } }))
    const env = cliEnv(home, { GOOGLE_APPLICATION_CREDENTIALS: file })
    const status = await run(["status", "vertex"], env)
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout + status.stderr).toContain(file)
    expect(status.stdout + status.stderr).toContain(serviceAccountEmail)
    const login = await run(["login", "vertex"], env)
    expect(login.code, login.stderr).toBe(0)
    expect(login.stderr).toContain("gcloud auth application-default login")
    expect(login.stderr).toContain(serviceAccountEmail)
    const token = await run(["token", "vertex"], env)
    expect(token.code, token.stderr).toBe(0)
    expect(await Effect.runPromise(fake.isActive(token.stdout.trim()))).toBe(true)
    // Nothing of it was stored.
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
    const missing = await run(["login", "vertex"], cliEnv(home, { GOOGLE_APPLICATION_CREDENTIALS: path.join(dir, "none.json") }))
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(path.join(dir, "none.json"))
    expect(missing.stderr).toContain("gcloud auth application-default login")
    fs.rmSync(home, { recursive: true, force: true })
  })
})

const Domain_secret = (c: Domain.Credential) => (c._tag === "ApiKey" ? c.key : c.token)
