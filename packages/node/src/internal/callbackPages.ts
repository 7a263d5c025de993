/**
 * The pages the loopback callback server answers with. Each is small, self-contained HTML
 * (no script, no external asset) so the strict CSP below holds. No page ever carries the
 * authorization code or the state; provider text is HTML-escaped.
 */

/** Headers on every answer: nothing cached, nothing leaked through `Referer`, nothing loaded. */
export const pageHeaders: Readonly<Record<string, string>> = {
  "Content-Type": "text/html; charset=utf-8",
  "Cache-Control": "no-store",
  "Pragma": "no-cache",
  "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY"
}

export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"'`]/g, (c) =>
    c === "&"
      ? "&amp;"
      : c === "<"
      ? "&lt;"
      : c === ">"
      ? "&gt;"
      : c === "\""
      ? "&quot;"
      : c === "'"
      ? "&#39;"
      : "&#96;")

const page = (title: string, body: string): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2328;line-height:1.5}
h1{font-size:1.4rem}
code{background:#f3f4f6;padding:0 .25rem;border-radius:3px}
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`

/** The login received its authorization code; the CLI goes on by itself. */
export const successPage = (provider: string): string =>
  page(
    "Signed in",
    `<p>agent-auth received the answer from ${escapeHtml(provider)}. You can close this tab and go back to the terminal.</p>`
  )

/** The provider refused (`error=` with the right state): the login has ended. */
export const deniedPage = (provider: string, error: string, description: string | undefined): string =>
  page(
    "Login failed",
    `<p>${escapeHtml(provider)} refused the authorization: <code>${escapeHtml(error)}</code>${
      description === undefined ? "" : ` — ${escapeHtml(description)}`
    }.</p>
<p>You can close this tab; the terminal says what to run to try again.</p>`
  )

/** A request that was refused and ignored: the login (if any) keeps waiting. */
export const rejectedPage = (title: string, reason: string): string =>
  page(title, `<p>${escapeHtml(reason)}</p>`)
