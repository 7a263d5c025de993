/**
 * The HTTP rules every exchange with a provider or an authorization server follows, for the
 * packages built on core (@agent-auth/mcp's discovery and client registration): a request
 * never follows a redirect (`withoutRedirects`, `isRedirect`, `redirectReason`), and an
 * answer is read up to a bound (`readBounded`, `readJsonBounded`: 1 MiB by default). One
 * implementation, core's own (internal/http.ts), so a package cannot drift from it.
 */
export {
  isRedirect,
  maxBodyBytes,
  readBounded,
  readJsonBounded,
  redirectReason,
  type TooLarge,
  tooLargeReason,
  withoutRedirects
} from "./internal/http.js"
