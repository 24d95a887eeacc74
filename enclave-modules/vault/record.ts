// A key record's plaintext encoding: what persist.ts seals (one versioned blob per key, and the
// unversioned blob of `export_sealed`). The encoding is strict and bounded; `decodeRecord` reads it
// back with every length checked even though a sealed record is authenticated (an authenticated
// record is still only as good as the parser that reads it).
//
// Format v1, integers little-endian, exactly this many bytes and no more:
//
//   off  len  field
//   0    4    magic "VKR1" (56 4B 52 31)
//   4    1    type: 0 ed25519, 1 x25519, 2 symmetric
//   5    1    flags: bit 0 exportable, bit 1 deletion_allowed, bit 2 destroyed; other bits 0
//   6    1    seal policy: 0 measurement, 1 signer
//   7    1    name length n, 1..64
//   8    n    name, matching [a-z0-9][a-z0-9_.-]{0,63}
//   8+n  4    latest_version
//   12+n 4    min_decryption_version
//   16+n 4    min_available_version
//   20+n 2    version count k: 0 for a destroyed record (a tombstone), else
//             latest - min_available + 1, at most 64
//   22+n 36k  k × (version u32 ‖ material[32]), versions min_available, min_available+1, ... latest
//
// A tombstone keeps its name, type, flags, policy and version numbers; its material is gone.

import { Value, SealPolicy } from "enclave/sdk";
import { wipe } from "enclave/sdk/crypto";
import { KeyEntry, KeyType, MATERIAL_BYTES, MAX_NAME_BYTES, MAX_VERSIONS, keyTypeName, sealPolicyName } from "./keyring";

const RECORD_MAGIC: u32 = 0x3152_4b56; // "VKR1" read as a little-endian u32
const FLAG_EXPORTABLE: u8 = 1;
const FLAG_DELETION_ALLOWED: u8 = 2;
const FLAG_DESTROYED: u8 = 4;
const FIXED_BYTES: i32 = 22;
const VERSION_BYTES: i32 = 4 + MATERIAL_BYTES;

/** The largest encoded record: a 64-byte name and 64 versions (2390 bytes). */
export const MAX_RECORD_BYTES: i32 = FIXED_BYTES + MAX_NAME_BYTES + MAX_VERSIONS * VERSION_BYTES;

/**
 * The record's bytes (format above). They hold key material: wipe them once sealed.
 * @throws aborts (trap) on a record that breaks the keyring's invariants (a bug, never input).
 * @example `const pt = encodeRecord(entry); const s = seal(pt, aad, entry.sealPolicy, id); wipe(pt);`
 */
export function encodeRecord(e: KeyEntry): Uint8Array {
  assert(e.wellFormed(), "vault: encoding a malformed record");
  const name = String.UTF8.encode(e.name);
  const n = name.byteLength;
  const k = e.versionCount();
  const out = new Uint8Array(FIXED_BYTES + n + k * VERSION_BYTES);
  const p = out.dataStart;
  store<u32>(p, RECORD_MAGIC);
  store<u8>(p + 4, <u8>e.type);
  let flags: u8 = 0;
  if (e.exportable) flags |= FLAG_EXPORTABLE;
  if (e.deletionAllowed) flags |= FLAG_DELETION_ALLOWED;
  if (e.destroyed) flags |= FLAG_DESTROYED;
  store<u8>(p + 5, flags);
  store<u8>(p + 6, <u8>e.sealPolicy);
  store<u8>(p + 7, <u8>n);
  memory.copy(p + 8, changetype<usize>(name), <usize>n);
  const q = p + 8 + <usize>n;
  store<u32>(q, e.latestVersion);
  store<u32>(q + 4, e.minDecryptionVersion);
  store<u32>(q + 8, e.minAvailableVersion);
  store<u16>(q + 12, <u16>k);
  for (let i = 0; i < k; i++) {
    const v = e.minAvailableVersion + <u32>i;
    const at = q + 14 + <usize>(i * VERSION_BYTES);
    store<u32>(at, v);
    memory.copy(at + 4, e.slot(v).dataStart, <usize>MATERIAL_BYTES);
  }
  return out;
}

/**
 * The record in `bytes`, or null unless `bytes` is exactly one well-formed record (every field
 * checked, and the keyring's invariants: contiguous versions, minimums in order). The material is
 * copied out; the caller wipes `bytes`.
 * @example `const rec = decodeRecord(u.bytes); wipe(u.bytes); if (rec === null) return fail(ErrorCode.UnsealFailed);`
 */
export function decodeRecord(bytes: Uint8Array): KeyEntry | null {
  const total = bytes.length;
  if (total < FIXED_BYTES + 1 || total > MAX_RECORD_BYTES) return null;
  const p = bytes.dataStart;
  if (load<u32>(p) != RECORD_MAGIC) return null;
  const type = load<u8>(p + 4);
  if (type > <u8>KeyType.Symmetric) return null;
  const flags = load<u8>(p + 5);
  if ((flags & ~(FLAG_EXPORTABLE | FLAG_DELETION_ALLOWED | FLAG_DESTROYED)) != 0) return null;
  const policy = load<u8>(p + 6);
  if (policy > 1) return null;
  const n = <i32>load<u8>(p + 7);
  if (n < 1 || n > MAX_NAME_BYTES || total < FIXED_BYTES + n) return null;
  const q = p + 8 + <usize>n;
  const k = <i32>load<u16>(q + 12);
  if (k > MAX_VERSIONS || total != FIXED_BYTES + n + k * VERSION_BYTES) return null;
  // Names are ASCII by their pattern: decode as UTF-8 and let validKeyName (in wellFormed) judge.
  for (let i = 0; i < n; i++) if (load<u8>(p + 8 + <usize>i) >= 0x80) return null;

  const e = new KeyEntry();
  e.name = String.UTF8.decodeUnsafe(p + 8, <usize>n);
  e.type = <KeyType>type;
  e.exportable = (flags & FLAG_EXPORTABLE) != 0;
  e.deletionAllowed = (flags & FLAG_DELETION_ALLOWED) != 0;
  e.destroyed = (flags & FLAG_DESTROYED) != 0;
  e.sealPolicy = <SealPolicy>policy;
  e.latestVersion = load<u32>(q);
  e.minDecryptionVersion = load<u32>(q + 4);
  e.minAvailableVersion = load<u32>(q + 8);
  // Exactly the versions min_available..latest, in order, each in its slot.
  const lo = e.minAvailableVersion, hi = e.latestVersion;
  const count: u64 = e.destroyed || lo < 1 || lo > hi ? <u64>0 : <u64>hi - <u64>lo + 1;
  if (<u64>k != count) return null;
  for (let i = 0; i < k; i++) {
    const at = q + 14 + <usize>(i * VERSION_BYTES);
    if (load<u32>(at) != lo + <u32>i) {
      wipeRecord(e);
      return null;
    }
    memory.copy(e.slot(lo + <u32>i).dataStart, at + 4, <usize>MATERIAL_BYTES);
  }
  if (!e.wellFormed()) {
    wipeRecord(e);
    return null;
  }
  return e;
}

/** Zeroes a decoded record's material (a record refused after its slots were filled). */
function wipeRecord(e: KeyEntry): void {
  const slab = e.slab;
  if (slab !== null) wipe(Uint8Array.wrap(slab));
}

/**
 * The public metadata of a record: `{name, type, latest_version, min_decryption_version,
 * min_available_version, exportable, deletion_allowed, seal_policy}`.
 * @example `return Reply.ok(Value.map().set("key", metaOf(t.current)));`
 */
export function metaOf(e: KeyEntry): Value {
  return Value.map()
    .set("name", Value.str(e.name))
    .set("type", Value.str(keyTypeName(e.type)))
    .set("latest_version", Value.int(<i64>e.latestVersion))
    .set("min_decryption_version", Value.int(<i64>e.minDecryptionVersion))
    .set("min_available_version", Value.int(<i64>e.minAvailableVersion))
    .set("exportable", Value.bool(e.exportable))
    .set("deletion_allowed", Value.bool(e.deletionAllowed))
    .set("seal_policy", Value.str(sealPolicyName(e.sealPolicy)));
}
