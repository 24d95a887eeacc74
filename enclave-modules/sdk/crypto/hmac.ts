/**
 * HMAC-SHA-256 and HMAC-SHA-512 (RFC 2104 §2; test vectors RFC 4231).
 *
 * Written for this project; layout after noble-hashes `hmac.ts`. The key is padded (or
 * hashed first, if longer than a block) into ipad/opad blocks that are wiped by
 * {@link HmacSha256.wipe} / after one-shot calls.
 */

import { Sha256, _sha256Ptr } from './sha256';
import { Sha512, _sha512Ptr } from './sha512';
import { _wipeStatic } from './utils';

/**
 * Keyed HMAC-SHA-256 context (RFC 2104). Keeps the padded key so that several messages
 * can be authenticated with one key (HKDF-Expand does this).
 *
 * @example
 * const m = new HmacSha256(key); m.update(data); const tag = m.digest(); m.wipe();
 */
export class HmacSha256 {
  private ipad: StaticArray<u8> = new StaticArray<u8>(64);
  private opad: StaticArray<u8> = new StaticArray<u8>(64);
  private inner: Sha256 = new Sha256();
  private outer: Sha256 = new Sha256();

  constructor(key: Uint8Array) {
    this._setKey(key.dataStart, <usize>key.length);
  }

  /** Sets the key (RFC 2104 §2 steps 1-2) and starts a new message. @internal */
  _setKey(key: usize, keyLen: usize): void {
    const ip = changetype<usize>(this.ipad);
    const op = changetype<usize>(this.opad);
    memory.fill(ip, 0, 64);
    // RFC 2104 §2: keys longer than B bytes are first hashed.
    if (keyLen > 64) _sha256Ptr(ip, key, keyLen);
    else memory.copy(ip, key, keyLen);
    for (let i: usize = 0; i < 64; i += 8) {
      const k = load<u64>(ip + i);
      store<u64>(op + i, k ^ 0x5c5c5c5c5c5c5c5c);
      store<u64>(ip + i, k ^ 0x3636363636363636);
    }
    this._start();
  }

  /** Starts a new message with the same key. @internal */
  _start(): void {
    this.inner.reset();
    this.inner._update(changetype<usize>(this.ipad), 64);
  }

  /** Absorbs `len` bytes at `ptr`. @internal */
  _update(ptr: usize, len: usize): void {
    this.inner._update(ptr, len);
  }

  /** Writes the 32-byte tag to `out` and readies the context for a new message. @internal */
  _finish(out: usize): void {
    this.inner._finish(out);
    this.outer.reset();
    this.outer._update(changetype<usize>(this.opad), 64);
    this.outer._update(out, 32);
    this.outer._finish(out);
    this._start();
  }

  /** Absorbs `data`. */
  update(data: Uint8Array): HmacSha256 {
    this._update(data.dataStart, <usize>data.length);
    return this;
  }

  /** Returns the 32-byte tag; the context can then authenticate another message. */
  digest(): Uint8Array {
    const out = new Uint8Array(32);
    this._finish(out.dataStart);
    return out;
  }

  /** Erases the key material held by this context. */
  wipe(): void {
    _wipeStatic(this.ipad);
    _wipeStatic(this.opad);
    this.inner.reset();
    this.outer.reset();
  }
}

/**
 * Keyed HMAC-SHA-512 context (RFC 2104, block size 128 bytes).
 *
 * @example
 * const m = new HmacSha512(key); m.update(data); const tag = m.digest(); m.wipe();
 */
export class HmacSha512 {
  private ipad: StaticArray<u8> = new StaticArray<u8>(128);
  private opad: StaticArray<u8> = new StaticArray<u8>(128);
  private inner: Sha512 = new Sha512();
  private outer: Sha512 = new Sha512();

  constructor(key: Uint8Array) {
    this._setKey(key.dataStart, <usize>key.length);
  }

  /** @internal */
  _setKey(key: usize, keyLen: usize): void {
    const ip = changetype<usize>(this.ipad);
    const op = changetype<usize>(this.opad);
    memory.fill(ip, 0, 128);
    if (keyLen > 128) _sha512Ptr(ip, key, keyLen);
    else memory.copy(ip, key, keyLen);
    for (let i: usize = 0; i < 128; i += 8) {
      const k = load<u64>(ip + i);
      store<u64>(op + i, k ^ 0x5c5c5c5c5c5c5c5c);
      store<u64>(ip + i, k ^ 0x3636363636363636);
    }
    this._start();
  }

  /** @internal */
  _start(): void {
    this.inner.reset();
    this.inner._update(changetype<usize>(this.ipad), 128);
  }

  /** @internal */
  _update(ptr: usize, len: usize): void {
    this.inner._update(ptr, len);
  }

  /** @internal */
  _finish(out: usize): void {
    this.inner._finish(out);
    this.outer.reset();
    this.outer._update(changetype<usize>(this.opad), 128);
    this.outer._update(out, 64);
    this.outer._finish(out);
    this._start();
  }

  /** Absorbs `data`. */
  update(data: Uint8Array): HmacSha512 {
    this._update(data.dataStart, <usize>data.length);
    return this;
  }

  /** Returns the 64-byte tag; the context can then authenticate another message. */
  digest(): Uint8Array {
    const out = new Uint8Array(64);
    this._finish(out.dataStart);
    return out;
  }

  /** Erases the key material held by this context. */
  wipe(): void {
    _wipeStatic(this.ipad);
    _wipeStatic(this.opad);
    this.inner.reset();
    this.outer.reset();
  }
}

// Lazily created shared contexts for the one-shot functions (no allocation per call).
let _m256: HmacSha256 | null = null;
let _m512: HmacSha512 | null = null;

/** HMAC-SHA-256 over raw memory; key material is wiped afterwards. @internal */
export function _hmacSha256Ptr(out: usize, key: usize, keyLen: usize, msg: usize, msgLen: usize): void {
  let m = _m256;
  if (m === null) { m = new HmacSha256(new Uint8Array(0)); _m256 = m; }
  m._setKey(key, keyLen);
  m._update(msg, msgLen);
  m._finish(out);
  m.wipe();
}

/** HMAC-SHA-512 over raw memory; key material is wiped afterwards. @internal */
export function _hmacSha512Ptr(out: usize, key: usize, keyLen: usize, msg: usize, msgLen: usize): void {
  let m = _m512;
  if (m === null) { m = new HmacSha512(new Uint8Array(0)); _m512 = m; }
  m._setKey(key, keyLen);
  m._update(msg, msgLen);
  m._finish(out);
  m.wipe();
}

/**
 * HMAC-SHA-256 of `data` under `key` (RFC 2104; RFC 4231 §4 vectors). Any key length is
 * accepted (RFC 2104 §3 recommends at least 32 bytes).
 * @returns a new 32-byte tag. Compare tags with `equalBytes`, never `==` on bytes.
 */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  _hmacSha256Ptr(out.dataStart, key.dataStart, <usize>key.length, data.dataStart, <usize>data.length);
  return out;
}

/**
 * HMAC-SHA-512 of `data` under `key` (RFC 2104; RFC 4231 §4 vectors).
 * @returns a new 64-byte tag.
 */
export function hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  _hmacSha512Ptr(out.dataStart, key.dataStart, <usize>key.length, data.dataStart, <usize>data.length);
  return out;
}
