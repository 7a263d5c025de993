/**
 * Every failure agent-auth can report, as `Schema.TaggedError` classes.
 *
 * Each error carries a `message` a person can act on (what failed, and the command
 * that fixes it) and the CLI `exitCode` it maps to. No field ever holds a secret:
 * errors are logged, printed and serialised, so tokens stay out of them by construction.
 *
 * Exit codes: 0 ok, 1 authentication needed, 2 usage or config error,
 * 3 provider or network error, 4 store error, 130 cancelled.
 */
import { Schema } from "effect"

/** The CLI exit codes, by meaning. */
export const ExitCode = {
  Ok: 0,
  AuthRequired: 1,
  Usage: 2,
  Provider: 3,
  Store: 4,
  Cancelled: 130
} as const

const loginHint = (provider: string) => `agent-auth login ${provider}`

/** No credential at all for the provider: neither a key nor a login. */
export class NotLoggedIn extends Schema.TaggedError<NotLoggedIn>()("NotLoggedIn", {
  provider: Schema.String,
  /** Environment variables that would supply a key, if the provider takes one. */
  envVars: Schema.Array(Schema.String),
  /** False for providers that only take API keys (no login exists for them). */
  canLogin: Schema.Boolean,
  /** The account asked for (`--account`), when one was: another login will not create it. */
  account: Schema.optional(Schema.String),
  /** The command that signs in, where it is not `agent-auth login <provider>` (an MCP server's `agent-auth mcp login <url>`). */
  command: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.AuthRequired
  override get message() {
    if (this.command !== undefined) return `Not logged in to ${this.provider}: run \`${this.command}\`.`
    if (this.account !== undefined) {
      const add = this.canLogin ? `\`${loginHint(this.provider)} --account ${this.account}\`` : `\`${loginHint(this.provider)} --with-api-key --account ${this.account}\``
      return `${this.provider} has no stored account "${this.account}": \`agent-auth status ${this.provider}\` lists its accounts, ${add} adds it.`
    }
    const ways: Array<string> = []
    if (this.envVars.length > 0) ways.push(`set ${this.envVars.join(" or ")}`)
    ways.push(this.canLogin ? `run \`${loginHint(this.provider)}\`` : `run \`${loginHint(this.provider)} --with-api-key\``)
    return `Not logged in to ${this.provider}: ${ways.join(", or ")}.`
  }
}

/** A login exists but can no longer be used (refresh token expired, reused or revoked). */
export class ReauthRequired extends Schema.TaggedError<ReauthRequired>()("ReauthRequired", {
  provider: Schema.String,
  account: Schema.optional(Schema.String),
  /** Why, in the provider's words where it gave some (an OAuth error code, never a token). */
  reason: Schema.String,
  /**
   * An earlier refresh of this login was sent and its answer lost (`connection failed`,
   * `no answer within 30s`, `HTTP 502`): the provider most likely rotated the refresh token
   * then, and the new one never arrived.
   */
  lostAnswer: Schema.optional(Schema.String),
  /** The command that signs in again, where it is not `agent-auth login <provider>`. */
  command: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.AuthRequired
  override get message() {
    const who = this.account === undefined ? this.provider : `${this.provider} (${this.account})`
    const again = this.command ?? loginHint(this.provider)
    if (this.lostAnswer !== undefined) {
      return `The login for ${who} can no longer be used (${this.reason}): an earlier refresh reached ${this.provider} but its answer was lost (${this.lostAnswer}), so ${this.provider} most likely replaced the refresh token with one that never arrived, and nothing on this machine can recover it. Run \`${again}\` to sign in again.`
    }
    return `The login for ${who} can no longer be used (${this.reason}); run \`${again}\` to sign in again.`
  }
}

export class LoginCancelled extends Schema.TaggedError<LoginCancelled>()("LoginCancelled", {
  provider: Schema.String
}) {
  readonly exitCode = ExitCode.Cancelled
  override get message() {
    return `Login to ${this.provider} was cancelled; nothing was stored.`
  }
}

export class LoginTimeout extends Schema.TaggedError<LoginTimeout>()("LoginTimeout", {
  provider: Schema.String,
  seconds: Schema.Number,
  /** The command that signs in again, where it is not `agent-auth login <provider>` (an MCP server's `agent-auth mcp login <url>`, which has no --device). */
  command: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.AuthRequired
  override get message() {
    if (this.command !== undefined) {
      return `Login to ${this.provider} timed out after ${this.seconds} s with no answer from the browser; run \`${this.command}\` again (\`--timeout\` gives more time, pasting the redirect URL works when the browser cannot reach this machine).`
    }
    return `Login to ${this.provider} timed out after ${this.seconds} s with no answer from the browser; run \`${loginHint(this.provider)}\` again (\`--timeout\` gives more time, \`--device\` or pasting the redirect URL works when the browser cannot reach this machine).`
  }
}

/** The `state` that came back is not the one this login sent: a forged or stale redirect. */
export class StateMismatch extends Schema.TaggedError<StateMismatch>()("StateMismatch", {
  provider: Schema.String,
  /** The command that signs in, where it is not `agent-auth login <provider>`. */
  command: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.AuthRequired
  override get message() {
    return `The redirect for ${this.provider} carried a state that this login did not send (a stale or forged redirect); it was refused. Use the URL from the current \`${this.command ?? loginHint(this.provider)}\`.`
  }
}

/** The authorization server said no (`error=` on the redirect, or a denied device code). */
export class AuthorizationDenied extends Schema.TaggedError<AuthorizationDenied>()("AuthorizationDenied", {
  provider: Schema.String,
  error: Schema.String,
  description: Schema.optional(Schema.String),
  /** The command that signs in, where it is not `agent-auth login <provider>`. */
  command: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.AuthRequired
  override get message() {
    const why = this.description === undefined ? this.error : `${this.error}: ${this.description}`
    return `${this.provider} refused the authorization (${why}). Run \`${this.command ?? loginHint(this.provider)}\` to try again.`
  }
}

/** The token endpoint answered with an error the caller cannot fix by signing in again. */
export class TokenEndpointError extends Schema.TaggedError<TokenEndpointError>()("TokenEndpointError", {
  provider: Schema.String,
  endpoint: Schema.String,
  status: Schema.Number,
  error: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  /** Seconds the server asked us to wait (429/503 `Retry-After`). */
  retryAfter: Schema.optional(Schema.Number)
}) {
  readonly exitCode = ExitCode.Provider
  override get message() {
    const oauth = this.error === undefined
      ? ""
      : this.description === undefined
      ? ` (${this.error})`
      : ` (${this.error}: ${this.description})`
    return `${this.provider}'s token endpoint ${this.endpoint} answered HTTP ${this.status}${oauth}. Try again later; \`--verbose\` shows each step.`
  }
}

/** The provider could not be reached, or answered something that is not its protocol. */
export class NetworkError extends Schema.TaggedError<NetworkError>()("NetworkError", {
  provider: Schema.String,
  endpoint: Schema.String,
  reason: Schema.String,
  /** The answer broke a rule (a redirect, a body past 1 MiB): another try would get the same, so none is made. */
  final: Schema.optional(Schema.Boolean)
}) {
  readonly exitCode = ExitCode.Provider
  override get message() {
    return `Could not talk to ${this.provider} at ${this.endpoint}: ${this.reason}. Check the network (or the issuer in config.json) and try again.`
  }
}

/** A JWT was refused; `rule` names the check that failed (alg, signature, iss, aud, azp, exp, nbf, iat, nonce, sub, kid, jwks, format). */
export class JwtInvalid extends Schema.TaggedError<JwtInvalid>()("JwtInvalid", {
  rule: Schema.String,
  detail: Schema.String
}) {
  readonly exitCode = ExitCode.Provider
  override get message() {
    return `The ID token was refused (${this.rule}: ${this.detail}); nothing was stored. If this persists the provider's configuration (issuer, client id) may be wrong.`
  }
}

export class DiscoveryError extends Schema.TaggedError<DiscoveryError>()("DiscoveryError", {
  issuer: Schema.String,
  reason: Schema.String,
  /** Set when nothing answered at all ("connection refused at 127.0.0.1:8080"): the issuer may be right, its server is not there. */
  unreachable: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.Provider
  override get message() {
    if (this.unreachable !== undefined) {
      return `Could not reach the issuer ${this.issuer}: ${this.unreachable}. Is its server running (and the network up)? Then try again.`
    }
    return `Discovery for the issuer ${this.issuer} failed: ${this.reason}. Check \`issuer\` in config.json.`
  }
}

export class StoreCorrupted extends Schema.TaggedError<StoreCorrupted>()("StoreCorrupted", {
  path: Schema.String,
  /** Where the unreadable file was moved so nothing is lost. */
  movedTo: Schema.optional(Schema.String),
  reason: Schema.String,
  /** Set when the file is not damaged but newer: written by a later agent-auth in this format version. */
  newerVersion: Schema.optional(Schema.Number)
}) {
  readonly exitCode = ExitCode.Store
  override get message() {
    // Logging in again would meet the same file: the fix is an upgrade.
    if (this.newerVersion !== undefined) {
      return `The credentials file ${this.path} was written by a newer agent-auth (format version ${this.newerVersion}); it was left as it is. Upgrade agent-auth to use it.`
    }
    const kept = this.movedTo === undefined ? "it was left in place" : `it was moved to ${this.movedTo}`
    return `The credentials file ${this.path} could not be read (${this.reason}); ${kept}. Log in again to start a new one.`
  }
}

export class StoreLocked extends Schema.TaggedError<StoreLocked>()("StoreLocked", {
  path: Schema.String,
  waitedMs: Schema.Number,
  holderPid: Schema.optional(Schema.Number)
}) {
  readonly exitCode = ExitCode.Store
  override get message() {
    const who = this.holderPid === undefined ? "another process" : `process ${this.holderPid}`
    return `The credential store ${this.path} stayed locked by ${who} for ${Math.round(this.waitedMs / 1000)} s. If no agent-auth is running, remove ${this.path}.lock.`
  }
}

export class StorePermissions extends Schema.TaggedError<StorePermissions>()("StorePermissions", {
  path: Schema.String,
  detail: Schema.String
}) {
  readonly exitCode = ExitCode.Store
  override get message() {
    return `The credential store ${this.path} is not safe to use: ${this.detail}.`
  }
}

/** Any other failure of the store's medium (disk full, keyring unavailable). */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  path: Schema.String,
  reason: Schema.String
}) {
  readonly exitCode = ExitCode.Store
  override get message() {
    return `The credential store ${this.path} failed: ${this.reason}.`
  }
}

export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  /** The file (or environment variable) holding the bad value. */
  source: Schema.String,
  /** The field, as a path such as `providers.acme.issuer`. */
  field: Schema.String,
  reason: Schema.String
}) {
  readonly exitCode = ExitCode.Usage
  override get message() {
    return `Invalid configuration in ${this.source} at ${this.field}: ${this.reason}.`
  }
}

export class PortUnavailable extends Schema.TaggedError<PortUnavailable>()("PortUnavailable", {
  ports: Schema.Array(Schema.Number),
  provider: Schema.String,
  /** The addresses that must all be free (127.0.0.1, and [::1] for a `localhost` redirect); default 127.0.0.1. */
  addresses: Schema.optional(Schema.Array(Schema.String)),
  /** The port was chosen by the person (`--port`), not fixed by the provider's registration. */
  chosen: Schema.optional(Schema.Boolean),
  /** The CLI's embedded demo server of another agent-auth home holds it: that server's state file. */
  heldBy: Schema.optional(Schema.String),
  /** The config.json where the demo's issuer (and so its port) can be moved. */
  configPath: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.Provider
  override get message() {
    const ports = this.ports.join(" and ")
    const on = (this.addresses ?? ["127.0.0.1"]).join(" and ")
    if (this.heldBy !== undefined) {
      // Sharing it would store this home's logins in the other home's demo state.
      return `Port ${ports} on ${on} is held by the demo server of another agent-auth home (${this.heldBy}). ` +
        `Wait for the agent-auth command using that home to finish, or point providers.demo.issuer in ` +
        `${this.configPath ?? "config.json"} at another loopback port, such as "http://127.0.0.1:${(this.ports[0] ?? 14555) + 1}".`
    }
    if (this.chosen === true) {
      return `Port ${ports} on ${on} is in use. Choose another with \`--port\` (0 picks a free one), or leave \`--port\` out.`
    }
    // Not --no-browser: it would bind the same port.
    return `Port ${ports} on ${on} is in use, and ${this.provider}'s registration allows no other. Stop the program holding it (\`lsof -i :${this.ports[0]}\` shows it), or run \`agent-auth login ${this.provider} --device\`.`
  }
}

export class UnknownProvider extends Schema.TaggedError<UnknownProvider>()("UnknownProvider", {
  provider: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  readonly exitCode = ExitCode.Usage
  override get message() {
    return `Unknown provider "${this.provider}". Known: ${this.known.join(", ")}. Add others under "providers" in config.json.`
  }
}

/**
 * Google's Application Default Credentials are missing or unusable (the `vertex` provider).
 * The file is named; its content never is (it holds a refresh token or a private key).
 */
export class AdcInvalid extends Schema.TaggedError<AdcInvalid>()("AdcInvalid", {
  /** The ADC file (GOOGLE_APPLICATION_CREDENTIALS, or gcloud's default). */
  path: Schema.String,
  reason: Schema.String
}) {
  readonly exitCode = ExitCode.AuthRequired
  override get message() {
    return `Google Application Default Credentials ${this.path}: ${this.reason}. Run \`gcloud auth application-default login\`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file.`
  }
}

/**
 * A SQL store's row was encrypted under a key this process was not given (or fails its
 * authentication tag): the configured key is wrong. Nothing is overwritten.
 */
export class StoreKeyRejected extends Schema.TaggedError<StoreKeyRejected>()("StoreKeyRejected", {
  /** The environment variable to fix. */
  variable: Schema.String,
  /** The key id stored beside the row (a hash prefix, never the key). */
  keyId: Schema.String,
  /** The key id of the configured key. */
  currentKeyId: Schema.String,
  reason: Schema.String
}) {
  readonly exitCode = ExitCode.Store
  override get message() {
    return `Stored credentials were encrypted with key ${this.keyId}, but ${this.reason}. Set ${this.variable} to the key they were written with (earlier keys go in AGENT_AUTH_ENCRYPTION_KEYS_PREVIOUS, comma-separated); nothing was overwritten.`
  }
}

/**
 * A hosted sign-in callback that cannot complete: its state is unknown or already used (a
 * state is single-use, on every replica), its pending login expired, or it came back to a
 * different principal than the one that started it (a login link sent to someone else).
 */
export class SignInRefused extends Schema.TaggedError<SignInRefused>()("SignInRefused", {
  reason: Schema.Literal("unknown", "expired", "principal")
}) {
  readonly exitCode = ExitCode.AuthRequired
  override get message() {
    const why = this.reason === "unknown"
      ? "this sign-in link is unknown or was already used"
      : this.reason === "expired"
      ? "this sign-in took too long and expired"
      : "this sign-in was started by another user"
    return `Sign-in refused: ${why}. Start the sign-in again from the page that offered it.`
  }
}

/** Every error agent-auth reports. */
export type AuthError =
  | NotLoggedIn
  | ReauthRequired
  | LoginCancelled
  | LoginTimeout
  | StateMismatch
  | AuthorizationDenied
  | TokenEndpointError
  | NetworkError
  | JwtInvalid
  | DiscoveryError
  | StoreCorrupted
  | StoreLocked
  | StorePermissions
  | StoreError
  | ConfigInvalid
  | PortUnavailable
  | UnknownProvider
  | AdcInvalid
  | StoreKeyRejected
  | SignInRefused
  | McpDiscoveryError

/** Errors a `TokenStore` may fail with. */
export type TokenStoreError = StoreCorrupted | StoreLocked | StorePermissions | StoreError | StoreKeyRejected

/**
 * `refresh` of a login the provider gave no refresh token: it cannot be refreshed, yet it
 * is not unusable — its access token works until it expires.
 */
export class NoRefreshToken extends Schema.TaggedError<NoRefreshToken>()("NoRefreshToken", {
  provider: Schema.String,
  account: Schema.String,
  /** When the access token expires (ISO 8601), if known and still ahead. */
  validUntil: Schema.optional(Schema.String),
  /** The command that signs in again, where it is not `agent-auth login <provider>` (an MCP server's). */
  command: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.AuthRequired
  override get message() {
    const until = this.validUntil === undefined ? "until it expires" : `until ${this.validUntil}`
    return `The login for ${this.provider} (${this.account}) cannot be refreshed: ${this.provider} gave no refresh token. Its access token works ${until}; then run \`${this.command ?? loginHint(this.provider)}\`.`
  }
}

/**
 * The command line (or what was typed on stdin) is not something agent-auth can run: an
 * unknown command or flag, a flag without its value, a value out of range. Not a
 * configuration problem, so not `ConfigInvalid`. `reason` is the whole sentence, naming
 * the argument and the command that shows how (`agent-auth <command> --help`).
 */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  /** Where the bad input came from: "command line" or "stdin". */
  source: Schema.Literal("command line", "stdin"),
  reason: Schema.String
}) {
  readonly exitCode = ExitCode.Usage
  override get message() {
    return this.reason
  }
}

/** The person said no, or pressed Esc or Ctrl-C, at a question (`logout --all` on a terminal). */
export class OperationCancelled extends Schema.TaggedError<OperationCancelled>()("OperationCancelled", {
  /** What was not done, as a sentence subject: "Logging out of every provider". */
  what: Schema.String
}) {
  readonly exitCode = ExitCode.Cancelled
  override get message() {
    return `${this.what} was cancelled; nothing was changed.`
  }
}

/**
 * An MCP server could not be signed in to: its protected-resource metadata (RFC 9728) or the
 * authorization server it names was refused or unusable; `reason` names the rule and field.
 */
export class McpDiscoveryError extends Schema.TaggedError<McpDiscoveryError>()("McpDiscoveryError", {
  /** The MCP server's URL, as given. */
  server: Schema.String,
  reason: Schema.String
}) {
  readonly exitCode = ExitCode.Provider
  override get message() {
    return `Cannot sign in to the MCP server ${this.server}: ${this.reason}. Check the URL; \`agent-auth mcp login ${this.server} --verbose\` shows each step.`
  }
}
