// Sealed blobs (docs/SEALING.md): data encrypted inside the enclave under a sealing key that only
// this module (policy `Measurement`) or its signer's line of modules (policy `Signer`) can derive,
// with an optional monotonic counter that refuses an older copy (rollback protection).
//
// Imported as `enclave/sdk/sealed` (sdk/sealed.ts). A module that uses it needs the capabilities
// `seal`, `random` and `counter`: the three imports are on the code paths of `seal`/`unseal`, and
// AssemblyScript emits an import whenever a function that may call it is compiled in.
//
// Format v1, all integers little-endian (docs/SEALING.md §2 is the byte table):
//   magic "ENCS" | version 1 | policy | flags (bit 0: versioned) | reserved 0 | root key id u32 |
//   svn u32 | counter id u64 | counter value u64 | nonce[24] | plaintext length n u32 |
//   ciphertext[n] | tag[16]
// AEAD: XChaCha20-Poly1305, key = seal_key_at(policy, key id, svn), associated data = the 60 header
// bytes ‖ the caller's aad.
//
// @example
// ```ts
// import { seal, unseal, commitSealed } from "enclave/sdk/sealed";
// const s = seal(record, aad, SealPolicy.Signer, counterId);   // pending until committed
// if (!s.ok) return Reply.err(s.code);
// // ... the host stores s.bytes durably, then calls the op that runs:
// if (commitSealed(s.bytes) != 0) return Reply.err(ErrorCode.Conflict);
// ```

import { ErrorCode } from "./reply";
import { SealPolicy, sealKeyAt, counterRead, counterAdvance, fillRandom, SEAL_KEY_AT_BYTES, COUNTER_BYTES } from "./env";
import { xchacha20poly1305Seal, xchacha20poly1305Open, XCHACHA20POLY1305_NONCE_LEN } from "./crypto/chacha20poly1305";
import { sha256 } from "./crypto/sha256";
import { equalBytes, wipe } from "./crypto/utils";

/** The first four bytes of every sealed blob: "ENCS". */
export const SEALED_MAGIC: u32 = 0x53434e45; // "ENCS" read as a little-endian u32
/** The format version this SDK writes and the only one it reads. */
export const SEALED_VERSION: u8 = 1;
/** The header's length: the bytes before the ciphertext (all of them authenticated). */
export const SEALED_HEADER_BYTES: i32 = 60;
/** A blob's bytes beyond its plaintext: header and Poly1305 tag. */
export const SEALED_OVERHEAD: i32 = SEALED_HEADER_BYTES + 16;
/** The hard bound on a sealed plaintext (16 MiB), whatever the caller's `maxPlaintext`. */
export const SEALED_MAX_PLAINTEXT: i32 = 16 << 20;
/** Flag bit 0: the counter id and value are meaningful (a versioned, rollback-protected blob). */
export const SEALED_FLAG_VERSIONED: u8 = 1;

// Header offsets (docs/SEALING.md §2).
const OFF_VERSION: usize = 4;
const OFF_POLICY: usize = 5;
const OFF_FLAGS: usize = 6;
const OFF_RESERVED: usize = 7;
const OFF_KEY_ID: usize = 8;
const OFF_SVN: usize = 12;
const OFF_COUNTER_ID: usize = 16;
const OFF_COUNTER: usize = 24;
const OFF_NONCE: usize = 32;
const OFF_LENGTH: usize = 56;
/** Root key ids are 1..2^31-1 (docs/SEALING.md §5); the import takes them as i32. */
const MAX_KEY_ID: u32 = 0x7fffffff;

/**
 * The result of {@link seal}, {@link unseal} and {@link reseal}: `ok` and `bytes` (the blob for
 * `seal`/`reseal`, the plaintext for `unseal`), or `ok == false` and `code` (with a `message` for
 * logs; it never contains secret or blob bytes).
 *
 * @example
 * ```ts
 * const u = unseal(blob, aad, 65536);
 * if (!u.ok) return Reply.err(u.code, u.message);
 * if (u.pending && commitSealed(blob) != 0) return Reply.err(ErrorCode.Conflict);
 * if (u.stale) { const r = reseal(blob, aad, 65536); ... }   // move it to the current root / svn
 * ```
 */
export class Sealed {
  /** Whether the operation succeeded; when `false`, only `code` and `message` mean anything. */
  ok: bool = false;
  /** Why it failed: `UnsealFailed`, `Rollback`, `Conflict`, `Limit`, `State`, `BadRequest`, `Internal`. */
  code: ErrorCode = ErrorCode.Internal;
  /** A short reason for logs (public: never secret or blob bytes). */
  message: string = "";
  /** `seal`/`reseal`: the blob; `unseal`: the plaintext (wipe it when done if it is secret). */
  bytes: Uint8Array = new Uint8Array(0);
  /** The blob's sealing policy. */
  policy: SealPolicy = SealPolicy.Measurement;
  /** The platform root the blob is sealed under (≥ 1). */
  keyId: u32 = 0;
  /** The svn whose key sealed it (signer policy; 0 under measurement). */
  svn: u32 = 0;
  /** The counter id (0: not versioned). */
  counterId: u64 = 0;
  /** The blob's counter value (0: not versioned). */
  counter: u64 = 0;
  /**
   * A versioned blob that is sealed but not committed: `seal` always says `true` for a versioned
   * blob; `unseal` says `true` when the blob is one ahead of its counter (stored, never committed):
   * commit it before acting on it.
   */
  pending: bool = false;
  /**
   * `unseal`: the blob is sealed under a root that is not the platform's current one, or (signer
   * policy) under an svn below this module's: {@link reseal} it to move it forward.
   */
  stale: bool = false;

  /** @internal a failure */
  static fail(code: ErrorCode, message: string): Sealed {
    const s = new Sealed();
    s.code = code;
    s.message = message;
    return s;
  }
}

/** The header fields of a blob that passed the strict parse. @internal */
class Header {
  policy: SealPolicy = SealPolicy.Measurement;
  versioned: bool = false;
  keyId: u32 = 0;
  svn: u32 = 0;
  counterId: u64 = 0;
  counter: u64 = 0;
  length: i32 = 0;
}

/** The caller's bound, clamped to [0, SEALED_MAX_PLAINTEXT]. */
function plaintextBound(maxPlaintext: i32): i32 {
  if (maxPlaintext < 0) return 0;
  return maxPlaintext < SEALED_MAX_PLAINTEXT ? maxPlaintext : SEALED_MAX_PLAINTEXT;
}

/**
 * The strict parse of docs/SEALING.md §3: every header byte is checked against the one encoding
 * this SDK writes, and the length is exact. `null` for anything else (one outcome: `unseal_failed`).
 */
function parseHeader(blob: Uint8Array, maxPlaintext: i32): Header | null {
  const total = blob.length;
  if (total < SEALED_OVERHEAD) return null;
  const p = blob.dataStart;
  if (load<u32>(p) != SEALED_MAGIC) return null;
  if (load<u8>(p + OFF_VERSION) != SEALED_VERSION) return null;
  const policy = load<u8>(p + OFF_POLICY);
  if (policy > 1) return null;
  const flags = load<u8>(p + OFF_FLAGS);
  if ((flags & ~SEALED_FLAG_VERSIONED) != 0) return null;
  if (load<u8>(p + OFF_RESERVED) != 0) return null;
  const keyId = load<u32>(p + OFF_KEY_ID);
  if (keyId == 0 || keyId > MAX_KEY_ID) return null;
  const svn = load<u32>(p + OFF_SVN);
  // Under measurement the svn is not part of the key: the one encoding is 0. Under signer the
  // import takes it as an i32.
  if (policy == <u8>SealPolicy.Measurement ? svn != 0 : svn > <u32>i32.MAX_VALUE) return null;
  const counterId = load<u64>(p + OFF_COUNTER_ID);
  const counter = load<u64>(p + OFF_COUNTER);
  const versioned = (flags & SEALED_FLAG_VERSIONED) != 0;
  if (versioned) {
    if (counterId == 0 || counter == 0) return null;
  } else if (counterId != 0 || counter != 0) {
    return null;
  }
  const n = load<u32>(p + OFF_LENGTH);
  if (n > <u32>plaintextBound(maxPlaintext)) return null;
  // n ≤ 16 MiB here, so the sum cannot overflow an i32.
  if (total != SEALED_OVERHEAD + <i32>n) return null;
  const h = new Header();
  h.policy = <SealPolicy>policy;
  h.versioned = versioned;
  h.keyId = keyId;
  h.svn = svn;
  h.counterId = counterId;
  h.counter = counter;
  h.length = <i32>n;
  return h;
}

/** header[0, 60) ‖ aad: the AEAD's associated data. */
function associatedData(blob: Uint8Array, aad: Uint8Array): Uint8Array {
  const ad = new Uint8Array(SEALED_HEADER_BYTES + aad.length);
  memory.copy(ad.dataStart, blob.dataStart, <usize>SEALED_HEADER_BYTES);
  memory.copy(ad.dataStart + <usize>SEALED_HEADER_BYTES, aad.dataStart, <usize>aad.length);
  return ad;
}

/**
 * Seals `plaintext` under the platform's current root and this module's own svn (signer policy).
 *
 * With `counterId` 0 the blob is not versioned: any copy of it opens for as long as its root is
 * active. With `counterId` ≥ 1 it is versioned: it takes the value one above the counter's current
 * one and is PENDING (`pending == true`): store it durably, then {@link commitSealed} it; until then
 * the older committed blob is still the current one, and once committed every older copy is
 * refused with `Rollback`. Nothing is advanced here.
 *
 * @param plaintext at most 16 MiB.
 * @param aad bound to the blob (not stored in it): `unseal` must be given the same bytes.
 * @param policy `Measurement` (this exact module) or `Signer` (this signer, name, svn ≤ own).
 * @param counterId 0 (not versioned) or the counter that orders this blob's versions.
 * @returns `ok` with `bytes` = the blob; or `code`: `Limit` (plaintext above 16 MiB, or the counter
 *   is at its maximum), `State` (no sealing key or counter for this policy: for example `Signer` on
 *   an unsigned module), `BadRequest` (a policy other than 0 and 1), `Internal` (no randomness).
 * @throws never: every failure is a `Sealed` with `ok == false`.
 * @example
 * ```ts
 * const s = seal(secret, aad, SealPolicy.Signer);
 * if (!s.ok) return Reply.err(s.code, s.message);
 * return Reply.ok(Value.bin(s.bytes));
 * ```
 */
export function seal(plaintext: Uint8Array, aad: Uint8Array, policy: SealPolicy, counterId: u64 = 0): Sealed {
  if (plaintext.length > SEALED_MAX_PLAINTEXT) return Sealed.fail(ErrorCode.Limit, "sealed plaintext above 16 MiB");
  if (<i32>policy != <i32>SealPolicy.Measurement && <i32>policy != <i32>SealPolicy.Signer) {
    return Sealed.fail(ErrorCode.BadRequest, "unknown sealing policy");
  }
  const versioned = counterId != 0;
  let counter: u64 = 0;
  if (versioned) {
    const cbuf = new Uint8Array(COUNTER_BYTES);
    if (counterRead(policy, counterId, cbuf) != 0) return Sealed.fail(ErrorCode.State, "counter unavailable");
    const c = load<u64>(cbuf.dataStart);
    if (c == u64.MAX_VALUE) return Sealed.fail(ErrorCode.Limit, "counter at its maximum");
    counter = c + 1;
  }
  const n = plaintext.length;
  const blob = new Uint8Array(SEALED_OVERHEAD + n);
  const p = blob.dataStart;
  const nonce = blob.subarray(<i32>OFF_NONCE, <i32>OFF_NONCE + XCHACHA20POLY1305_NONCE_LEN);
  if (!fillRandom(nonce)) {
    return Sealed.fail(ErrorCode.Internal, "no randomness");
  }
  const kbuf = new Uint8Array(SEAL_KEY_AT_BYTES);
  if (sealKeyAt(policy, 0, -1, kbuf) != 0) {
    wipe(kbuf);
    return Sealed.fail(ErrorCode.State, "no sealing key for this policy");
  }
  const keyId = load<u32>(kbuf.dataStart + 32);
  const svn = load<u32>(kbuf.dataStart + 36);
  if (keyId == 0 || keyId > MAX_KEY_ID || (policy == SealPolicy.Measurement && svn != 0) || svn > <u32>i32.MAX_VALUE) {
    wipe(kbuf);
    return Sealed.fail(ErrorCode.Internal, "the platform answered a malformed sealing key");
  }
  store<u32>(p, SEALED_MAGIC);
  store<u8>(p + OFF_VERSION, SEALED_VERSION);
  store<u8>(p + OFF_POLICY, <u8>policy);
  store<u8>(p + OFF_FLAGS, versioned ? SEALED_FLAG_VERSIONED : 0);
  store<u8>(p + OFF_RESERVED, 0);
  store<u32>(p + OFF_KEY_ID, keyId);
  store<u32>(p + OFF_SVN, svn);
  store<u64>(p + OFF_COUNTER_ID, counterId);
  store<u64>(p + OFF_COUNTER, counter);
  store<u32>(p + OFF_LENGTH, <u32>n);

  const key = kbuf.subarray(0, 32);
  const ad = associatedData(blob, aad);
  const sealed = xchacha20poly1305Seal(key, nonce, plaintext, ad);
  wipe(kbuf);
  memory.copy(p + <usize>SEALED_HEADER_BYTES, sealed.dataStart, <usize>sealed.length);
  // The ciphertext is not secret, but the copy's source is garbage now: clear it anyway, it is cheap.
  wipe(sealed);

  const s = new Sealed();
  s.ok = true;
  s.code = ErrorCode.Internal;
  s.bytes = blob;
  s.policy = policy;
  s.keyId = keyId;
  s.svn = svn;
  s.counterId = counterId;
  s.counter = counter;
  s.pending = versioned;
  s.stale = false;
  return s;
}

/**
 * Opens a blob made by {@link seal} (by this module, or under `Signer` by a module of the same
 * signer and name with an svn ≤ this one's).
 *
 * Checks, in order: the strict parse (every header byte, the exact length, `n ≤ maxPlaintext`),
 * the AEAD (the key of the blob's root and svn; any changed byte fails), then for a versioned blob
 * its counter: value == counter and SHA-256(blob) == the counter's tag → current; value ==
 * counter + 1 → `pending` (stored but never committed: commit it before acting on it); anything
 * else → `Rollback`.
 *
 * @param blob the bytes from storage (hostile: every byte is checked).
 * @param aad the same bytes as given to `seal`.
 * @param maxPlaintext the largest plaintext the caller accepts (clamped to 0..16 MiB).
 * @returns `ok` with `bytes` = the plaintext; or `code` `UnsealFailed` (malformed, changed, another
 *   module, a revoked or unknown root, an svn above this module's: nothing more is said),
 *   `Rollback` (an older copy than the counter says), `State` (the counter could not be read).
 * @throws never: every failure is a `Sealed` with `ok == false`.
 * @example
 * ```ts
 * const u = unseal(args.get("blob").asBytes(), aad, 4096);
 * if (!u.ok) return Reply.err(u.code);
 * ```
 */
export function unseal(blob: Uint8Array, aad: Uint8Array, maxPlaintext: i32): Sealed {
  const h = parseHeader(blob, maxPlaintext);
  if (h === null) return Sealed.fail(ErrorCode.UnsealFailed, "sealed blob did not open");
  const kbuf = new Uint8Array(SEAL_KEY_AT_BYTES);
  const rc = sealKeyAt(h.policy, h.keyId, h.policy == SealPolicy.Signer ? <i32>h.svn : -1, kbuf);
  // The platform must answer the root and svn asked for; anything else is not this blob's key.
  if (rc != 0 || load<u32>(kbuf.dataStart + 32) != h.keyId || load<u32>(kbuf.dataStart + 36) != h.svn) {
    wipe(kbuf);
    return Sealed.fail(ErrorCode.UnsealFailed, "sealed blob did not open");
  }
  const key = kbuf.subarray(0, 32);
  const nonce = blob.subarray(<i32>OFF_NONCE, <i32>OFF_NONCE + XCHACHA20POLY1305_NONCE_LEN);
  const ad = associatedData(blob, aad);
  const plaintext = xchacha20poly1305Open(key, nonce, blob.subarray(SEALED_HEADER_BYTES), ad);
  wipe(kbuf);
  if (plaintext === null) return Sealed.fail(ErrorCode.UnsealFailed, "sealed blob did not open");

  let pending = false;
  if (h.versioned) {
    // Only an authenticated blob gets here: its counter id and value are the sealer's.
    const cbuf = new Uint8Array(COUNTER_BYTES);
    if (counterRead(h.policy, h.counterId, cbuf) != 0) {
      wipe(plaintext);
      return Sealed.fail(ErrorCode.State, "counter unavailable");
    }
    const c = load<u64>(cbuf.dataStart);
    if (h.counter == c) {
      // The digest is not secret (the host can hash the blob); equalBytes anyway: one habit.
      if (!equalBytes(sha256(blob), cbuf.subarray(8, 40))) {
        wipe(plaintext);
        return Sealed.fail(ErrorCode.Rollback, "sealed blob is not the committed one");
      }
    } else if (c != u64.MAX_VALUE && h.counter == c + 1) {
      pending = true;
    } else {
      wipe(plaintext);
      return Sealed.fail(ErrorCode.Rollback, "sealed blob is older than its counter");
    }
  }

  const s = new Sealed();
  s.ok = true;
  s.bytes = plaintext;
  s.policy = h.policy;
  s.keyId = h.keyId;
  s.svn = h.svn;
  s.counterId = h.counterId;
  s.counter = h.counter;
  s.pending = pending;
  s.stale = isStale(h);
  return s;
}

/**
 * Whether the blob's root is not the current one, or (signer) its svn is below this module's.
 * Asks the platform for the current key (and wipes it at once): the one way to learn the current
 * root id and own svn. If that fails the blob is called stale, so the caller tries `reseal`, which
 * then reports the error.
 */
function isStale(h: Header): bool {
  const kbuf = new Uint8Array(SEAL_KEY_AT_BYTES);
  const rc = sealKeyAt(h.policy, 0, -1, kbuf);
  const currentId = load<u32>(kbuf.dataStart + 32);
  const ownSvn = load<u32>(kbuf.dataStart + 36);
  wipe(kbuf);
  if (rc != 0) return true;
  return currentId != h.keyId || (h.policy == SealPolicy.Signer && h.svn < ownSvn);
}

/**
 * Commits a versioned blob that `seal` (or `reseal`) returned, or that `unseal` reported
 * `pending`: advances its counter from value-1 to value with tag SHA-256(blob), durably. From then
 * on this blob is the current one and every older copy, and every sibling sealed at the same
 * value, is refused with `Rollback`. Call it only once the blob is durably stored (that is the
 * acknowledgement of the write). Committing the blob that is already committed is a no-op (0), so
 * a retried commit is safe.
 *
 * It does not authenticate the blob (it has no aad): give it only a blob this enclave sealed
 * itself or that `unseal` opened, never bytes straight from the host, or the host could advance a
 * counter past the real data (a denial of service, not a disclosure).
 *
 * @returns 0, or an `ErrorCode` value: `Conflict` (the counter moved: another blob was committed
 *   at this value, or the blob is more than one ahead), `UnsealFailed` (not a well-formed blob),
 *   `State` (not versioned, or the counter is unavailable), `Limit` (the platform's counter limit).
 *   Never `BadRequest`: its value is 0, the success value.
 * @throws never.
 * @example
 * ```ts
 * const rc = commitSealed(pendingBlob);
 * if (rc != 0) return Reply.err(<ErrorCode>rc, "commit failed");
 * ```
 */
export function commitSealed(blob: Uint8Array): i32 {
  const h = parseHeader(blob, SEALED_MAX_PLAINTEXT);
  if (h === null) return <i32>ErrorCode.UnsealFailed;
  // Not ErrorCode.BadRequest: it is 0, which means success here.
  if (!h.versioned) return <i32>ErrorCode.State;
  const digest = sha256(blob);
  const rc = counterAdvance(h.policy, h.counterId, h.counter - 1, digest);
  if (rc == 0) return 0;
  if (rc == -4) {
    // Already committed (a retry after a lost reply)? Then it is done.
    const cbuf = new Uint8Array(COUNTER_BYTES);
    if (counterRead(h.policy, h.counterId, cbuf) == 0 && load<u64>(cbuf.dataStart) == h.counter && equalBytes(cbuf.subarray(8, 40), digest)) {
      return 0;
    }
    return <i32>ErrorCode.Conflict;
  }
  if (rc == -5) return <i32>ErrorCode.Limit;
  return <i32>ErrorCode.State;
}

/**
 * Moves a blob forward: unseals it and seals the plaintext again under the platform's current root
 * and this module's own svn, with the same policy and counter id. For a versioned blob the result
 * is a new PENDING blob one above the counter: store it, then {@link commitSealed} it (the old one
 * stays current until then). A pending input is refused with `Conflict`: commit it first.
 *
 * @returns as {@link seal} (`bytes` = the new blob), or the failure of {@link unseal}.
 * @throws never.
 * @example
 * ```ts
 * const u = unseal(blob, aad, max);
 * if (u.ok && u.stale) { const r = reseal(blob, aad, max); if (r.ok) store(r.bytes); }
 * ```
 */
export function reseal(blob: Uint8Array, aad: Uint8Array, maxPlaintext: i32): Sealed {
  const u = unseal(blob, aad, maxPlaintext);
  if (!u.ok) return u;
  if (u.pending) {
    wipe(u.bytes);
    return Sealed.fail(ErrorCode.Conflict, "sealed blob is pending: commit it first");
  }
  const s = seal(u.bytes, aad, u.policy, u.counterId);
  wipe(u.bytes);
  return s;
}
