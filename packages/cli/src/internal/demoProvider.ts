/**
 * The `demo` provider: the embedded authorization server of internal/demo.ts, on
 * 127.0.0.1. Its own module, so the small bundle (fast.ts) knows the provider without
 * the server.
 */
import { Provider } from "@agent-auth/core"

export const demoProvider = Provider.ProviderConfig.make({
  id: "demo",
  kind: "oidc",
  displayName: "Demo (local authorization server, no network)",
  issuer: "http://127.0.0.1:14555",
  clientId: "agent-auth-demo",
  scopes: ["openid", "email", "profile", "offline_access"],
  authorizeParams: {},
  redirect: { host: "127.0.0.1", path: "/callback", ports: [0] },
  refreshFormat: "form",
  revokeFormat: "form",
  device: "rfc8628",
  apiBaseUrl: "http://127.0.0.1:14555/v1",
  apiKeyEnv: [],
  apiKeyHeader: "authorization",
  mode: "oauth_only"
})
