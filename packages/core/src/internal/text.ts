/**
 * Text that comes from a provider (an `error_description`, a display name, a device
 * message) on its way to a terminal: escape sequences (CSI, OSC, …) removed whole, then
 * every other control character (C0, DEL, C1) and the invisible bidi and zero-width
 * formatting characters, which can make a line read differently from what it is. The
 * result holds no 0x1b or 0x07 byte whatever went in.
 */

/** ESC [ … final, ESC ] … (BEL | ESC \), ESC P/X/^/_ … ESC \, and two-byte ESC sequences. */
const ESCAPE_SEQUENCE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[ -~]?/g

/** C0 controls (tab and newline included: provider text is one line), DEL, C1, bidi and zero-width characters. */
const CONTROL = /[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g

/** `text` without escape sequences or control characters, at most `max` characters long. */
export const sanitize = (text: string, max = 1_000): string =>
  text.replace(ESCAPE_SEQUENCE, "").replace(CONTROL, "").slice(0, max)
