/**
 * Text that a module or an enclave controls (export and import names, contract fields, custom
 * section names, error detail, log lines, reply values, claims of a token) is escaped before the
 * CLI prints it, so it cannot move the cursor, recolour or erase what the terminal shows, or reorder
 * it with bidirectional overrides (docs/THREAT-MODEL.md, "Terminal output"; Wasmtime's CLI does the same).
 *
 * - Human output: {@link escapeText} replaces every C0 and C1 control (newline and tab included),
 *   DEL, every format character (bidi embeddings, overrides and isolates U+202A–U+202E and
 *   U+2066–U+2069, marks U+200E/U+200F/U+061C, zero-width characters, U+FEFF), line and paragraph
 *   separators, lone surrogates, unassigned code points, and the backslash itself (so an escape
 *   cannot be forged) with a visible escape: `\x1b`, `\u202e`, `\u{e0001}`, `\\`.
 * - `--json` output: {@link escapeJson} applies to JSON text. `JSON.stringify` already escapes C0
 *   and lone surrogates inside strings; this also writes DEL, C1 and the other characters above as
 *   `\uXXXX` escapes. The JSON means exactly the same to a parser (a consumer gets the module's text
 *   unchanged) while a terminal showing it sees no raw control.
 */

// Cc: C0, DEL, C1. Cf: format (bidi controls, zero-width, U+FEFF, ...). Zl, Zp: U+2028, U+2029.
// Cs: lone surrogates. Cn: unassigned (a future version may make them controls).
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Cn}\\]/gu;
// The same, without C0 (JSON text holds raw C0 only as its own whitespace) and without the backslash.
const UNSAFE_IN_JSON = /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Cn}]/gu;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/**
 * Escapes text a module or an enclave controls for a terminal or a log line.
 * @example
 * escapeText('svn\x1b[2K 7\u202e'); // 'svn\\x1b[2K 7\\u202e'
 */
export function escapeText(text: string): string {
  return text.replace(UNSAFE, (ch) => (ch === '\\' ? '\\\\' : escapeOne(ch)));
}

/**
 * {@link escapeText} for the runtime's own messages, which quote module text with `JSON.stringify`
 * (core/errors.ts `quoteInput`): controls are escaped but a backslash is left as it is, so
 * `"a\u001b"` and a Windows path read as they were written.
 */
export function escapeMessage(text: string): string {
  return text.replace(UNSAFE, (ch) => (ch === '\\' ? ch : escapeOne(ch)));
}

function escapeOne(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x100) return `\\x${hex(cp, 2)}`;
  if (cp < 0x10000) return `\\u${hex(cp, 4)}`;
  return `\\u{${hex(cp, 5)}}`;
}

/**
 * Escapes JSON text (the output of `JSON.stringify`) for a terminal without changing what it means.
 * @example
 * escapeJson(JSON.stringify({ name: 'a\u202eb' })); // '{"name":"a\\u202eb"}'
 */
export function escapeJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, (ch) => {
    let out = '';
    for (let i = 0; i < ch.length; i++) out += `\\u${hex(ch.charCodeAt(i), 4)}`;
    return out;
  });
}

/** `JSON.stringify` for the CLI's output: escaped with {@link escapeJson}. */
export function stringifyForTerminal(value: unknown, indent?: number): string {
  return escapeJson(JSON.stringify(value, undefined, indent));
}
