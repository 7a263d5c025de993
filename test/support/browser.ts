/**
 * A minimal browser for driving an authorization server's HTML pages over HTTP: it follows
 * redirects, keeps cookies (per origin and path), and submits the page's form, filling the
 * fields a person would type from `fields` (login name, password, device user code).
 *
 * It stops at a page without a form, or — before requesting it — at a URL `stopAt` accepts
 * (e.g. the loopback redirect URI, when the test wants the callback URL itself).
 */

interface Cookie {
  readonly origin: string
  readonly name: string
  readonly value: string
  readonly path: string
}

export interface Form {
  readonly action: string
  readonly method: string
  readonly inputs: ReadonlyArray<{ readonly name: string; readonly type: string; readonly value: string | undefined }>
}

export interface Visit {
  /** The last URL reached (the `stopAt` URL, unrequested, when it matched). */
  readonly url: string
  /** Undefined when stopped at a `stopAt` URL. */
  readonly status: number | undefined
  readonly body: string
  /** Every URL requested, in order (for failure messages). */
  readonly trail: ReadonlyArray<string>
}

export interface NavigateOptions {
  /** Values for visible fields (text, password); hidden fields keep the page's values. */
  readonly fields?: Readonly<Record<string, string>>
  readonly stopAt?: (url: string) => boolean
  readonly maxSteps?: number
}

const decodeEntities = (text: string): string =>
  text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(parseInt(dec, 10)))
    .replace(/&quot;/g, "\"")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&")

const attributes = (tag: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const m of tag.matchAll(/([a-zA-Z_:.-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    const name = m[1]!.toLowerCase()
    if (!(name in out)) out[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? "")
  }
  return out
}

/** The forms of a page, in document order. */
export const parseForms = (html: string, base: string): ReadonlyArray<Form> =>
  [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map((m) => {
    const attrs = attributes(m[1]!)
    const inputs = [...m[2]!.matchAll(/<input\b([^>]*)>/gi)]
      .map((i) => attributes(i[1]!))
      .filter((a) => a.name !== undefined && a.name !== "")
      .map((a) => ({ name: a.name!, type: (a.type ?? "text").toLowerCase(), value: "value" in a ? a.value : undefined }))
    return {
      action: new URL(attrs.action ?? base, base).toString(),
      method: (attrs.method ?? "get").toUpperCase(),
      inputs
    }
  })

export class Browser {
  private cookies: Array<Cookie> = []

  /** The `Cookie` header for `url`: this origin's cookies whose path is a prefix of the URL's. */
  private cookieHeader(url: URL): string | undefined {
    const path = url.pathname
    const sent = this.cookies.filter((c) =>
      c.origin === url.origin && (path === c.path || path.startsWith(c.path.endsWith("/") ? c.path : `${c.path}/`))
    )
    return sent.length === 0 ? undefined : sent.map((c) => `${c.name}=${c.value}`).join("; ")
  }

  private keepCookies(url: URL, response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...rest] = line.split(";")
      const eq = pair!.indexOf("=")
      if (eq <= 0) continue
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const attrs = Object.fromEntries(rest.map((r) => {
        const i = r.indexOf("=")
        return i < 0 ? [r.trim().toLowerCase(), ""] : [r.slice(0, i).trim().toLowerCase(), r.slice(i + 1).trim()]
      }))
      const path = attrs.path?.startsWith("/") ? attrs.path : url.pathname.replace(/\/[^/]*$/, "") || "/"
      const expired = (attrs["max-age"] !== undefined && Number(attrs["max-age"]) <= 0) ||
        (attrs.expires !== undefined && Date.parse(attrs.expires) <= Date.now())
      this.cookies = this.cookies.filter((c) => !(c.origin === url.origin && c.name === name && c.path === path))
      if (!expired) this.cookies.push({ origin: url.origin, name, value, path })
    }
  }

  /** One request, cookies sent and kept, redirects not followed. */
  async request(url: string, init: { readonly method?: string; readonly form?: URLSearchParams } = {}): Promise<Response> {
    const target = new URL(url)
    const headers: Record<string, string> = {}
    const cookie = this.cookieHeader(target)
    if (cookie !== undefined) headers.cookie = cookie
    if (init.form !== undefined) headers["content-type"] = "application/x-www-form-urlencoded"
    const response = await fetch(target, {
      method: init.method ?? "GET",
      headers,
      redirect: "manual",
      ...(init.form === undefined ? {} : { body: init.form.toString() })
    })
    this.keepCookies(target, response)
    return response
  }

  /**
   * Opens `url` and goes on as a person would: follows redirects, fills and submits each
   * page's first form, until a page has no form or the next URL is one `stopAt` accepts.
   */
  async navigate(url: string, options: NavigateOptions = {}): Promise<Visit> {
    const fields = options.fields ?? {}
    const trail: Array<string> = []
    let next: { url: string; method: string; form?: URLSearchParams } = { url, method: "GET" }
    for (let step = 0; step < (options.maxSteps ?? 20); step++) {
      if (options.stopAt?.(next.url) === true) return { url: next.url, status: undefined, body: "", trail }
      trail.push(`${next.method} ${next.url}`)
      const response = await this.request(next.url, { method: next.method, ...(next.form ? { form: next.form } : {}) })
      const location = response.headers.get("location")
      if (response.status >= 300 && response.status < 400 && location !== null) {
        const keepMethod = response.status === 307 || response.status === 308
        next = {
          url: new URL(location, next.url).toString(),
          method: keepMethod ? next.method : "GET",
          ...(keepMethod && next.form ? { form: next.form } : {})
        }
        continue
      }
      const body = await response.text()
      const form = response.status === 200 ? parseForms(body, next.url)[0] : undefined
      if (form === undefined) return { url: next.url, status: response.status, body, trail }
      const data = new URLSearchParams()
      for (const input of form.inputs) {
        if (input.type === "submit" || input.type === "button") continue
        const typed = fields[input.name]
        if (input.type !== "hidden" && typed !== undefined) data.set(input.name, typed)
        else if (input.value !== undefined) data.set(input.name, input.value)
        else throw new Error(`the form at ${next.url} asks for "${input.name}", which the test did not give`)
      }
      next = form.method === "POST"
        ? { url: form.action, method: "POST", form: data }
        : { url: `${form.action.split("?")[0]}?${data.toString()}`, method: "GET" }
    }
    throw new Error(`no end after ${options.maxSteps ?? 20} steps:\n${trail.join("\n")}`)
  }
}
