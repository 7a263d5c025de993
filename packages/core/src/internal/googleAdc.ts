/**
 * Google's Application Default Credentials (ADC), for the `vertex` provider: the file
 * `gcloud auth application-default login` writes (`authorized_user`: a refresh grant) or a
 * service account key (`service_account`: an RFC 7523 JWT bearer grant signed RS256).
 *
 * The file is read, never copied into a store; the access tokens it yields are held in
 * memory by `Refresher.held`. Signing uses jose (already ours for ID tokens) rather than
 * google-auth-library: these two grants are a few dozen lines, and that library would add
 * its own HTTP stack, token cache and retry rules beside ours (the single flight, the
 * bounded retries, the redirect and body-size rules, the fake server in tests).
 */
import { FileSystem } from "@effect/platform"
import { Config, DateTime, Effect, Either, Option, ParseResult, Redacted, Schema } from "effect"
import * as jose from "jose"
import { urlProblem } from "../AuthConfig.js"
import { AccountClaims, type Credential, OAuthCredential, Secret } from "../Domain.js"
import type { AuthError } from "../Errors.js"
import { AdcInvalid, ConfigInvalid } from "../Errors.js"
import type { ProviderConfig } from "../Provider.js"
import { requestTokens } from "./tokenEndpoint.js"
import { tokenSetOf } from "./tokenSet.js"

export const gcloudCommand = "gcloud auth application-default login"
export const googleTokenUrl = "https://oauth2.googleapis.com/token"
export const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
export const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

const AuthorizedUser = Schema.Struct({
  type: Schema.Literal("authorized_user"),
  client_id: Schema.String,
  client_secret: Secret,
  refresh_token: Secret,
  quota_project_id: Schema.optional(Schema.String)
})

const ServiceAccount = Schema.Struct({
  type: Schema.Literal("service_account"),
  client_email: Schema.String,
  private_key: Secret,
  private_key_id: Schema.optional(Schema.String),
  token_uri: Schema.optional(Schema.String),
  project_id: Schema.optional(Schema.String)
})

const AdcJson = Schema.Union(AuthorizedUser, ServiceAccount)
const decodeAdc = Schema.decodeUnknownEither(AdcJson, { errors: "first" })

export interface Adc {
  readonly path: string
  readonly credentials: typeof AdcJson.Type
}

/** Who the credentials are, for people: the service account, or the gcloud user's client and quota project. */
export const accountOf = (adc: Adc): string =>
  adc.credentials.type === "service_account"
    ? adc.credentials.client_email
    : `gcloud user${adc.credentials.quota_project_id === undefined ? "" : ` (quota project ${adc.credentials.quota_project_id})`}`

const nonEmpty = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((v) => v.trim().length > 0)),
    Effect.map(Option.map((v) => v.trim())),
    Effect.mapError((e) => new ConfigInvalid({ source: "environment", field: name, reason: e.message }))
  )

/** GOOGLE_APPLICATION_CREDENTIALS, else gcloud's file under the home folder. */
export const adcPath: Effect.Effect<string, ConfigInvalid> = Effect.gen(function*() {
  const explicit = yield* nonEmpty("GOOGLE_APPLICATION_CREDENTIALS")
  if (Option.isSome(explicit)) return explicit.value
  const appData = yield* nonEmpty("APPDATA")
  if (Option.isSome(appData) && typeof process !== "undefined" && process.platform === "win32") {
    return `${appData.value}\\gcloud\\application_default_credentials.json`
  }
  const home = yield* nonEmpty("HOME")
  return `${Option.getOrElse(home, () => "~")}/.config/gcloud/application_default_credentials.json`
})

/** Reads and checks the ADC file; every failure names the file, never its content. */
export const readAdc = (fs: FileSystem.FileSystem): Effect.Effect<Adc, AdcInvalid | ConfigInvalid> =>
  Effect.gen(function*() {
    const path = yield* adcPath
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) =>
        new AdcInvalid({
          path,
          reason: e._tag === "SystemError" && e.reason === "NotFound" ? "no such file" : `could not be read (${e._tag === "SystemError" ? e.reason : "bad argument"})`
        })
      )
    )
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return yield* new AdcInvalid({ path, reason: "it is not JSON" })
    }
    const type = typeof json === "object" && json !== null ? (json as Record<string, unknown>).type : undefined
    if (type !== "authorized_user" && type !== "service_account") {
      return yield* new AdcInvalid({
        path,
        reason: `its type is ${typeof type === "string" ? `"${type.slice(0, 40)}"` : "missing"}; agent-auth takes "authorized_user" and "service_account"`
      })
    }
    const decoded = decodeAdc(json)
    if (Either.isLeft(decoded)) {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
      const field = (issue?.path ?? []).map(String).join(".") || "(file)"
      return yield* new AdcInvalid({ path, reason: `a ${type} credential needs "${field}" (a string)` })
    }
    return { path, credentials: decoded.right }
  })

/** The token endpoint: config.json's `endpoints.token`, else the key's `token_uri`, else Google's. */
export const tokenUrl = (provider: ProviderConfig, adc: Adc): Effect.Effect<string, AdcInvalid> => {
  const url = provider.endpoints?.token ??
    (adc.credentials.type === "service_account" ? adc.credentials.token_uri : undefined) ??
    googleTokenUrl
  const problem = urlProblem(url)
  return problem === undefined ? Effect.succeed(url) : Effect.fail(new AdcInvalid({ path: adc.path, reason: `token_uri: ${problem}` }))
}

/** RFC 7523 §2.1 assertion: iss = sub = the service account, aud = the token endpoint, one hour. */
const assertion = (adc: Adc & { readonly credentials: typeof ServiceAccount.Type }, audience: string, now: DateTime.Utc) =>
  Effect.tryPromise({
    try: async () => {
      const c = adc.credentials
      const key = await jose.importPKCS8(Redacted.value(c.private_key), "RS256")
      const iat = Math.floor(DateTime.toEpochMillis(now) / 1000)
      return await new jose.SignJWT({ scope: cloudPlatformScope })
        .setProtectedHeader({ alg: "RS256", typ: "JWT", ...(c.private_key_id === undefined ? {} : { kid: c.private_key_id }) })
        .setIssuer(c.client_email)
        .setSubject(c.client_email)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 3600)
        .sign(key)
    },
    // jose's message may quote nothing of the key, but say only what is wrong.
    catch: () => new AdcInvalid({ path: adc.path, reason: "its private_key is not an RSA private key in PKCS#8 PEM" })
  })

/** A new access token for the ADC: a refresh grant (authorized_user) or a JWT bearer grant (service_account). */
export const grant = (
  provider: ProviderConfig,
  adc: Adc,
  account: string,
  timeout: Parameters<typeof requestTokens>[4]
) =>
  Effect.gen(function*() {
    const url = yield* tokenUrl(provider, adc)
    const now = yield* DateTime.now
    const c = adc.credentials
    const body = c.type === "authorized_user"
      ? { grant_type: "refresh_token", refresh_token: c.refresh_token, client_id: c.client_id, client_secret: c.client_secret }
      : { grant_type: jwtBearerGrant, assertion: yield* assertion({ ...adc, credentials: c }, url, now), client_id: undefined }
    const response = yield* requestTokens(provider, url, body, "form", timeout).pipe(
      Effect.mapError((e): AuthError =>
        e._tag === "TokenEndpointError" && e.status >= 400 && e.status < 500
          ? new AdcInvalid({ path: adc.path, reason: `Google's token endpoint refused it (${e.error ?? `HTTP ${e.status}`})` })
          : e
      )
    )
    return new OAuthCredential({
      provider: provider.id,
      account,
      tokens: yield* tokenSetOf(provider.id, response),
      claims: AccountClaims.make(c.type === "service_account" ? { email: c.client_email } : {}),
      obtainedAt: now
    })
  })

const location = /^[a-z0-9-]{1,63}$/
const project = /^[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}$/

/**
 * Where model calls go: `apiBaseUrl` from config.json (with `{project}` and `{location}`
 * filled in), else Vertex AI's regional host (`aiplatform.googleapis.com` for `global`).
 * The project: GOOGLE_CLOUD_PROJECT, else the key's project, else the quota project.
 */
export const vertexBaseUrl = (provider: ProviderConfig, adc: Adc): Effect.Effect<string, ConfigInvalid> =>
  Effect.gen(function*() {
    const c = adc.credentials
    const fromFile = c.type === "service_account" ? c.project_id : c.quota_project_id
    const p = Option.getOrUndefined(yield* nonEmpty("GOOGLE_CLOUD_PROJECT")) ?? fromFile
    if (p === undefined) {
      return yield* new ConfigInvalid({ source: "environment", field: "GOOGLE_CLOUD_PROJECT", reason: "Vertex AI needs the Google Cloud project; set GOOGLE_CLOUD_PROJECT" })
    }
    if (!project.test(p)) return yield* new ConfigInvalid({ source: "environment", field: "GOOGLE_CLOUD_PROJECT", reason: "not a project id" })
    const l = Option.getOrElse(yield* nonEmpty("GOOGLE_CLOUD_LOCATION"), () => "us-central1")
    if (!location.test(l)) return yield* new ConfigInvalid({ source: "environment", field: "GOOGLE_CLOUD_LOCATION", reason: "not a location (such as us-central1 or global)" })
    const host = l === "global" ? "aiplatform.googleapis.com" : `${l}-aiplatform.googleapis.com`
    const template = provider.apiBaseUrl ?? `https://${host}/v1/projects/{project}/locations/{location}/publishers/google/models`
    return template.replaceAll("{project}", encodeURIComponent(p)).replaceAll("{location}", l)
  })

/** The credential of a model call: the bearer token, and the quota project of a gcloud user. */
export const adcCredential = (provider: ProviderConfig, adc: Adc, login: OAuthCredential, baseUrl: string): Credential => {
  const token = login.tokens.accessToken
  const headers: Record<string, Redacted.Redacted<string>> = { Authorization: Redacted.make(`Bearer ${Redacted.value(token)}`) }
  if (adc.credentials.type === "authorized_user" && adc.credentials.quota_project_id !== undefined) {
    headers["x-goog-user-project"] = Redacted.make(adc.credentials.quota_project_id)
  }
  return {
    _tag: "Bearer",
    provider: provider.id,
    account: login.account,
    token,
    headers,
    baseUrl,
    expiresAt: login.tokens.expiresAt,
    claims: login.claims,
    source: { _tag: "Adc", path: adc.path, type: adc.credentials.type, account: accountOf(adc) }
  }
}
