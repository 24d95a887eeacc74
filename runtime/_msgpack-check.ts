/**
 * The structure check of a msgpack message, run before anything is decoded (docs/ABI.md §4.4, §5):
 * msgpackr has no limits of its own, so truncation, lying lengths, extensions, depth, map keys and
 * the value count are checked here first, in one iterative walk that builds nothing.
 */

/**
 * Walks one msgpack value without building it and returns why it is not acceptable, or
 * `undefined`. Refuses: truncation, trailing bytes, the reserved byte 0xc1, extension types,
 * containers nested deeper than `maxDepth`, and lengths that claim more than the bytes left.
 * Iterative, so a hostile nesting cannot exhaust the host's stack. Map keys are not looked at
 * (see {@link checkReply}).
 */
export function checkMsgpack(bytes: Uint8Array, maxDepth: number, start = 0, end = bytes.length): string | undefined {
  return scan(bytes, maxDepth, start, end, false, Infinity);
}

/**
 * {@link checkMsgpack} plus the rules for what the host decodes into objects (docs/ABI.md §4.4):
 * every map key is a str of valid UTF-8, and no key appears twice in one map (a JS object would
 * merge them silently). The walk stops at value `maxItems + 1` and returns {@link TOO_MANY_ITEMS},
 * so it costs at most `maxItems` values whatever the byte length; otherwise {@link scannedItems}
 * holds the number of values in the message.
 */
export function checkReply(bytes: Uint8Array, maxDepth: number, start = 0, end = bytes.length, maxItems = Infinity): string | undefined {
  return scan(bytes, maxDepth, start, end, true, maxItems);
}

/** What {@link checkReply} returns for a message of more than `maxItems` values. */
export const TOO_MANY_ITEMS = 'too many values';

/** The number of msgpack values (every key, value and element) the last check walked. */
export let scannedItems = 0;
/**
 * Whether the last {@link checkReply} saw what msgpackr would not decode faithfully: a map key
 * `__proto__`, or a str (key or value) that starts with U+FEFF.
 */
export let scannedUnfaithful = false;

const keyDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const PROTO_KEY = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"
/** Maps of up to this many entries find a repeated key by comparing bytes; larger ones use a Set. */
const SMALL_MAP = 16;
/** The keys read so far of the small maps being walked (start, length), innermost last. */
const keyStart: number[] = [];
const keyLen: number[] = [];

/** Whether the key bytes are UTF-8 that decodes one way (ASCII, or checked by a fatal decoder). */
function validKey(bytes: Uint8Array, pos: number, len: number): boolean {
  for (let i = pos; i < pos + len; i++) {
    if (bytes[i]! >= 0x80) {
      try {
        keyDecoder.decode(bytes.subarray(pos, pos + len));
        return true;
      } catch {
        return false;
      }
    }
  }
  return true;
}

function sameBytes(bytes: Uint8Array, a: number, b: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

/** The key bytes as a latin1 string: equal strings exactly when the bytes are equal. */
function latin1(bytes: Uint8Array, pos: number, len: number): string {
  if (len > 32) return Buffer.from(bytes.buffer, bytes.byteOffset + pos, len).toString('latin1');
  let text = '';
  for (let i = pos; i < pos + len; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

function scan(bytes: Uint8Array, maxDepth: number, start: number, end: number, keys: boolean, maxItems: number): string | undefined {
  // pending[d] = values still to read at depth d; a map of n entries is 2n values. seen[d] is, for
  // a map: null (one entry), the base of its keys in keyStart/keyLen (up to SMALL_MAP entries) or a
  // Set of them (more); undefined for an array.
  const pending: number[] = [1];
  const seen: (Set<string> | number | null | undefined)[] = [undefined];
  keyStart.length = 0;
  keyLen.length = 0;
  let pos = start;
  let items = 0;
  scannedItems = 0;
  scannedUnfaithful = false;
  while (pending.length > 0) {
    const top = pending.length - 1;
    const left = pending[top]!;
    if (left === 0) {
      pending.pop();
      const done = seen.pop();
      if (typeof done === 'number') keyStart.length = keyLen.length = done;
      continue;
    }
    pending[top] = left - 1;
    if (++items > maxItems) return TOO_MANY_ITEMS;
    if (pos >= end) return 'truncated';
    const b = bytes[pos++]!;
    const map = seen[top];
    if (keys && map !== undefined && (left & 1) === 0) {
      // A map key: a str, valid UTF-8, not seen before in this map.
      let len: number;
      if ((b & 0xe0) === 0xa0) len = b & 0x1f;
      else if (b === 0xd9 && pos + 1 <= end) len = bytes[pos++]!;
      else if (b === 0xda && pos + 2 <= end) {
        len = (bytes[pos]! << 8) | bytes[pos + 1]!;
        pos += 2;
      } else if (b === 0xdb && pos + 4 <= end) {
        len = readU32(bytes, pos);
        pos += 4;
      } else if (b >= 0xd9 && b <= 0xdb) return 'truncated';
      else return 'a map key is not a string';
      if (len > end - pos) return 'a length runs past the end';
      if (len === 9 && PROTO_KEY.every((c, i) => bytes[pos + i] === c)) scannedUnfaithful = true;
      if (len >= 3 && bytes[pos] === 0xef && bytes[pos + 1] === 0xbb && bytes[pos + 2] === 0xbf) scannedUnfaithful = true;
      // Valid UTF-8 decodes one way, so two keys are the same string exactly when their bytes are.
      if (!validKey(bytes, pos, len)) return 'a map key is not valid UTF-8';
      if (typeof map === 'number') {
        for (let j = map; j < keyStart.length; j++) {
          if (keyLen[j] === len && sameBytes(bytes, keyStart[j]!, pos, len)) return 'a map has a key twice';
        }
        keyStart.push(pos);
        keyLen.push(len);
      } else if (map !== null) {
        const text = latin1(bytes, pos, len);
        if (map.has(text)) return 'a map has a key twice';
        map.add(text);
      }
      pos += len;
      continue;
    }
    let skip = 0;
    let children = -1;
    let isMap = false;
    if (b <= 0x7f || b >= 0xe0) {
      // fixint
    } else if (b <= 0x8f) {
      children = (b & 0x0f) * 2;
      isMap = true;
    } else if (b <= 0x9f) {
      children = b & 0x0f;
    } else if (b <= 0xbf) {
      skip = b & 0x1f;
    } else {
      switch (b) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          break;
        case 0xc4:
        case 0xd9:
          if (pos + 1 > end) return 'truncated';
          skip = bytes[pos]!;
          pos += 1;
          break;
        case 0xc5:
        case 0xda:
          if (pos + 2 > end) return 'truncated';
          skip = (bytes[pos]! << 8) | bytes[pos + 1]!;
          pos += 2;
          break;
        case 0xc6:
        case 0xdb:
          if (pos + 4 > end) return 'truncated';
          skip = readU32(bytes, pos);
          pos += 4;
          break;
        case 0xca:
          skip = 4;
          break;
        case 0xcb:
          skip = 8;
          break;
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xdc:
          if (pos + 2 > end) return 'truncated';
          children = (bytes[pos]! << 8) | bytes[pos + 1]!;
          pos += 2;
          break;
        case 0xde:
          if (pos + 2 > end) return 'truncated';
          children = ((bytes[pos]! << 8) | bytes[pos + 1]!) * 2;
          pos += 2;
          isMap = true;
          break;
        case 0xdd:
          if (pos + 4 > end) return 'truncated';
          children = readU32(bytes, pos);
          pos += 4;
          break;
        case 0xdf:
          if (pos + 4 > end) return 'truncated';
          children = readU32(bytes, pos) * 2;
          pos += 4;
          isMap = true;
          break;
        case 0xc1:
          return 'reserved byte 0xc1';
        default:
          // 0xc7..0xc9 ext 8/16/32, 0xd4..0xd8 fixext
          return 'extension types are not allowed';
      }
    }
    if (skip > end - pos) return 'a length runs past the end';
    // A str that starts with U+FEFF: msgpackr without its native extractor drops it (a default
    // TextDecoder for strings over 64 bytes), so such a message takes the faithful decoder too.
    if (skip >= 3 && bytes[pos] === 0xef && bytes[pos + 1] === 0xbb && bytes[pos + 2] === 0xbf && ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb))) {
      scannedUnfaithful = true;
    }
    pos += skip;
    if (children >= 0) {
      // Each element takes at least one byte: a count beyond the bytes left is a lie.
      if (children > end - pos) return 'a container claims more elements than there are bytes';
      if (pending.length > maxDepth) return `nested deeper than ${maxDepth}`;
      if (children > 0) {
        pending.push(children);
        seen.push(!isMap ? undefined : !keys || children === 2 ? null : children <= 2 * SMALL_MAP ? keyStart.length : new Set<string>());
      }
    }
  }
  if (pos !== end) return 'trailing bytes after the value';
  scannedItems = items;
  return undefined;
}

/** The big-endian u32 at `pos` (the caller has checked that its 4 bytes are there). */
export function readU32(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos]! << 24) >>> 0) + ((bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!);
}
