// The vault's cryptographic operations (docs/VAULT.md §4.2): encrypt, decrypt, rewrap, datakey, sign,
// verify, mac, verify_mac, derive, public_key. Every one takes a key handle (keyring.ts resolves
// it) and never returns a key's material (derive and datakey return keys made for the caller);
// encrypt, decrypt, rewrap, sign, verify, mac and verify_mac also take a `batch` of up to 256
// items, each answered on its own.
//
// Formats (all integers little-endian):
//   ciphertext = "EV1" ‖ version u32 ‖ nonce[24] ‖ XChaCha20-Poly1305(key_v, nonce, plaintext, aad') ‖ tag[16]
//     aad'     = "enclave-vault/v1\0" ‖ u32 len(name) ‖ name ‖ version u32 ‖ the caller's aad
//     (the key's name and the version are bound: a ciphertext moved to another key, or its version
//     field edited, does not authenticate)
//   signature  = version u32 ‖ Ed25519(seed_v, message)[64]
//   mac        = version u32 ‖ HMAC-SHA-256(HKDF-SHA-256(key_v, salt "", info "enclave-vault/mac", 32), data)[32]
//     (a subkey: the key itself is never an HMAC key, so no tag is computed under the AEAD's key)
//   derive     = HKDF-SHA-256(ikm, salt "enclave-vault/derive", info = context, length), ikm = key_v
//     (symmetric) or X25519(key_v, peer) (x25519; an all-zero shared secret is refused)
//
// Everything a caller sends is hostile: every ciphertext, signature and mac is parsed strictly (exact
// lengths, magic, version 1..latest) before any key is touched, and temporary key material (MAC
// subkeys, shared secrets, re-wrapped plaintexts, unreturned data keys) is zeroed after use.

import { Enclave, Value, Reply, ErrorCode, errorCodeName, randomBytes } from "enclave/sdk";
import {
  xchacha20poly1305Seal, xchacha20poly1305Open, ed25519Sign, ed25519Verify, ed25519PublicKey,
  x25519, x25519PublicKey, hmacSha256, hkdfSha256, equalBytes, wipe,
} from "enclave/sdk/crypto";
import { KeyEntry, KeyType, KeyVersion, resolveHandle } from "./keyring";
import {
  CIPHERTEXT_HEADER, CIPHERTEXT_OVERHEAD, NONCE_BYTES, SIGNATURE_BYTES, MAC_BYTES,
  MAX_PLAINTEXT, MAX_AAD, MAX_BATCH, DATA_KEY_BYTES, DERIVE_DEFAULT_BYTES, DERIVE_MAX_BYTES,
  MAGIC_0, MAGIC_1, MAGIC_2, isMagic, readVersion, aeadAad, MAC_INFO, DERIVE_SALT, EMPTY,
} from "./crypto-format";
import {
  WORK_BUDGET, COST_AEAD_ITEM, COST_AEAD_BYTE, COST_REWRAP_BYTE, COST_SIGN_ITEM, COST_SIGN_BYTE,
  COST_VERIFY_ITEM, COST_VERIFY_BYTE, COST_PUBLIC_KEY, COST_MAC_ITEM, COST_MAC_BYTE,
} from "./crypto-cost";

/**
 * Registers the vault's crypto ops with `Enclave.op`. Called once from the vault's index.ts, at the
 * module's top level.
 *
 * @throws nothing: a registration with an invalid op name aborts at start (it cannot happen here:
 *   the names are constants).
 * @example
 * ```ts
 * import { registerCryptoOps } from "./crypto-ops";
 * registerCryptoOps();
 * ```
 */
export function registerCryptoOps(): void {
  Enclave.op("encrypt", opEncrypt);
  Enclave.op("decrypt", opDecrypt);
  Enclave.op("rewrap", opRewrap);
  Enclave.op("datakey", opDatakey);
  Enclave.op("sign", opSign);
  Enclave.op("verify", opVerify);
  Enclave.op("mac", opMac);
  Enclave.op("verify_mac", opVerifyMac);
  Enclave.op("derive", opDerive);
  Enclave.op("public_key", opPublicKey);
}

// ---- the reply budget of a batch ----

// The contract's reply limit, given by `enclave build` as a compile-time constant (sdk/limits.ts does
// the same); under plain asc, the ABI default.
// @ts-ignore: a compile-time constant of the build, undeclared for TypeScript
const REPLY_BYTES: i32 = isDefined(ENCLAVE_REPLY_BYTES) ? ENCLAVE_REPLY_BYTES : 65536;
/** Room kept for the envelope and the batch array's header. */
const REPLY_RESERVE: i64 = 64;
/**
 * What one batch item's map costs besides its value's bytes, reserved for every item up front: an
 * `{err: code}` whole (fixmap, "err", the longest code: 20 bytes) or the frame of an `{ok: value}`
 * (fixmap, "ok", a bin header of at most 5 bytes: 9). So error items always fit, and an ok item
 * only adds its value's length.
 */
const ITEM_BYTES: i64 = 24;

// ---- per-call context ----

/**
 * What one call (a single item or a whole batch) works with: the key, its name's bytes (for the
 * AEAD's associated data), and the per-version secrets derived at most once per call (MAC
 * subkeys, Ed25519 public keys), zeroed when the call ends.
 */
class CallContext {
  readonly key: KeyEntry;
  readonly name: Uint8Array;
  /** MAC subkeys by version: secrets, wiped by `finish`. */
  macKeys: Map<u32, Uint8Array> = new Map<u32, Uint8Array>();
  /** Ed25519 public keys by version (public: not wiped). */
  publicKeys: Map<u32, Uint8Array> = new Map<u32, Uint8Array>();
  /** Bytes the batch reply may hold so far, from above: set by `runBatch`. */
  replyBytes: i64 = 0;
  /** Fuel the call's items were estimated to spend so far (crypto-cost.ts). */
  work: i64 = 0;

  constructor(key: KeyEntry) {
    this.key = key;
    this.name = Uint8Array.wrap(String.UTF8.encode(key.name));
  }

  /**
   * Charges `fixed + perByte × bytes` to the call's work budget: false (nothing charged) when it
   * would pass WORK_BUDGET; the item is then answered `limit` and not run.
   */
  spend(fixed: i64, perByte: i64, bytes: i32): bool {
    const cost = fixed + perByte * <i64>bytes;
    if (this.work + cost > WORK_BUDGET) return false;
    this.work += cost;
    return true;
  }

  /** The MAC subkey of `kv`, derived once per call. */
  macKey(kv: KeyVersion): Uint8Array {
    if (this.macKeys.has(kv.version)) return this.macKeys.get(kv.version);
    const k = hkdfSha256(kv.material, EMPTY, MAC_INFO, 32)!;
    this.macKeys.set(kv.version, k);
    return k;
  }

  /** The Ed25519 public key of `kv`, derived once per call. */
  publicKey(kv: KeyVersion): Uint8Array {
    if (this.publicKeys.has(kv.version)) return this.publicKeys.get(kv.version);
    const p = ed25519PublicKey(kv.material);
    this.publicKeys.set(kv.version, p);
    return p;
  }

  /** Zeroes the secrets this call derived. */
  finish(): void {
    const keys = this.macKeys.values();
    for (let i = 0; i < keys.length; i++) wipe(unchecked(keys[i]));
    this.macKeys.clear();
  }
}

/** One item's work: its reply (a value, or an error code with a message). */
type ItemOp = (ctx: CallContext, item: Value) => Reply;

/** Key-type bits for `runOp`'s `types`. */
const T_ED25519: i32 = 1 << <i32>KeyType.Ed25519;
const T_X25519: i32 = 1 << <i32>KeyType.X25519;
const T_SYMMETRIC: i32 = 1 << <i32>KeyType.Symmetric;

/**
 * The common frame of every op: resolves `handle` (`not_found`), checks the key's type
 * (`bad_request`), then runs `op` on the args themselves or, with `batch`, on each item.
 * `itemFields` are the names an item has: beside `batch` they are ambiguous (`bad_request`).
 */
function runOp(args: Value, types: i32, op: ItemOp, itemFields: string[], batchable: bool): Reply {
  if (!args.isMap()) return Reply.badRequest("args must be a map");
  const key = resolveHandle(args.get("handle"));
  if (key === null) return Reply.err(ErrorCode.NotFound, "no such key");
  if (((1 << <i32>key.type) & types) == 0) return Reply.badRequest("this op does not apply to this key's type");
  const ctx = new CallContext(key);
  let reply: Reply;
  if (batchable && args.has("batch")) {
    reply = runBatch(ctx, args, op, itemFields);
  } else {
    reply = op(ctx, args);
  }
  ctx.finish();
  return reply;
}

/**
 * `batch: [item, ...]` (1..256 items) → `[{ok: value} | {err: code}, ...]` in order. A bad item
 * gets its own error and never fails the others. The batch is bounded as a whole: an item whose
 * work would pass the call's budget (crypto-cost.ts), or whose value would pass the contract's
 * reply limit, is answered `{err: "limit"}` (the caller sends it again in another call).
 */
function runBatch(ctx: CallContext, args: Value, op: ItemOp, itemFields: string[]): Reply {
  for (let i = 0; i < itemFields.length; i++) {
    if (args.has(unchecked(itemFields[i]))) return Reply.badRequest("batch and single-item fields together");
  }
  const batch = args.get("batch");
  if (!batch.isArray()) return Reply.badRequest("batch must be an array");
  const n = batch.length;
  if (n < 1 || n > MAX_BATCH) return Reply.badRequest("batch must hold 1..256 items");
  ctx.replyBytes = REPLY_RESERVE + <i64>n * ITEM_BYTES;
  const out = Value.array();
  for (let i = 0; i < n; i++) {
    const item = batch.at(i);
    const r = item.isMap() ? op(ctx, item) : Reply.badRequest();
    out.push(batchItem(ctx, r));
  }
  return Reply.ok(out);
}

/**
 * `{ok: value}` or `{err: code}`; an ok value (a bin or a bool) that does not fit what is left of
 * the reply limit becomes `{err: "limit"}`.
 */
function batchItem(ctx: CallContext, r: Reply): Value {
  let code = r.code;
  if (r.isOk) {
    const size = <i64>r.value.length; // its frame is in the item's reservation
    if (ctx.replyBytes + size <= <i64>REPLY_BYTES) {
      ctx.replyBytes += size;
      return Value.map().set("ok", r.value);
    }
    code = ErrorCode.Limit;
  }
  return Value.map().set("err", Value.str(errorCodeName(code)));
}

// ---- argument helpers ----

/** An item the call's work budget cannot pay for (crypto-cost.ts). */
function overBudget(): Reply {
  return Reply.err(ErrorCode.Limit, "the batch's work budget is spent: send the rest in another call");
}

/**
 * A bin field of at most `max` bytes: the bytes; `EMPTY` when absent (or nil) and `optional`; null
 * when it has the wrong kind, is over `max`, or is missing and required.
 */
function binArg(args: Value, field: string, max: i32, optional: bool): Uint8Array | null {
  const v = args.get(field);
  if (v.isNil()) return optional ? EMPTY : null;
  if (!v.isBin() || v.length > max) return null;
  return v.asBytes();
}

/** The version of an optional `version` field: 0 when absent, -1 when not an int in 1..2^32-1. */
function versionArg(args: Value): i64 {
  const v = args.get("version");
  if (v.isNil()) return 0;
  if (!v.isInt()) return -1;
  const n = v.asInt();
  return n >= 1 && n <= <i64>u32.MAX_VALUE ? n : -1;
}

/**
 * The key version `v` for a read of old data: `not_found` when trimmed or never made (or above
 * latest); `denied` below `min_decryption_version` when `enforceMin`.
 */
function readableVersion(key: KeyEntry, v: u32, enforceMin: bool): Reply | null {
  if (v > key.latestVersion || key.version(v) === null) return Reply.err(ErrorCode.NotFound, "no such key version (trimmed or never made)");
  if (enforceMin && v < key.minDecryptionVersion) return Reply.err(ErrorCode.Denied, "key version below min_decryption_version");
  return null;
}

// ---- AEAD ----

/** Seals `plaintext` under the key's latest version: the full ciphertext. */
function sealLatest(ctx: CallContext, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const kv = ctx.key.latest();
  const nonce = randomBytes(NONCE_BYTES);
  const ad = aeadAad(ctx.name, kv.version, aad);
  const sealed = xchacha20poly1305Seal(kv.material, nonce, plaintext, ad);
  const out = new Uint8Array(CIPHERTEXT_HEADER + sealed.length);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = MAGIC_2;
  store<u32>(out.dataStart + 3, kv.version);
  out.set(nonce, 7);
  out.set(sealed, CIPHERTEXT_HEADER);
  return out;
}

/**
 * Opens a caller's ciphertext: the plaintext (Reply.ok(bin)) or `bad_request` (malformed: short,
 * long, wrong magic, version 0), `not_found` (trimmed or unknown version), `denied` (below
 * min_decryption_version), `decrypt_failed` (did not authenticate).
 */
function openCiphertext(ctx: CallContext, ct: Uint8Array, aad: Uint8Array): Reply {
  if (ct.length < CIPHERTEXT_OVERHEAD || ct.length > CIPHERTEXT_OVERHEAD + MAX_PLAINTEXT || !isMagic(ct)) {
    return Reply.badRequest("malformed ciphertext");
  }
  const v = readVersion(ct, 3);
  if (v == 0) return Reply.badRequest("malformed ciphertext");
  const refused = readableVersion(ctx.key, v, true);
  if (refused !== null) return refused;
  const kv = ctx.key.version(v)!;
  const ad = aeadAad(ctx.name, v, aad);
  const pt = xchacha20poly1305Open(kv.material, ct.subarray(7, CIPHERTEXT_HEADER), ct.subarray(CIPHERTEXT_HEADER), ad);
  if (pt === null) return Reply.err(ErrorCode.DecryptFailed, "ciphertext did not authenticate");
  return Reply.ok(Value.bin(pt));
}

/** `{plaintext: bin, aad?: bin}` → ciphertext (symmetric keys). */
function encryptItem(ctx: CallContext, item: Value): Reply {
  const pt = binArg(item, "plaintext", MAX_PLAINTEXT, false);
  const aad = binArg(item, "aad", MAX_AAD, true);
  if (pt === null || aad === null) return Reply.badRequest("plaintext (≤ 1 MiB) and aad (≤ 64 KiB) must be bin");
  if (!ctx.spend(COST_AEAD_ITEM, COST_AEAD_BYTE, pt.length + aad.length)) return overBudget();
  return Reply.ok(Value.bin(sealLatest(ctx, pt, aad)));
}

/** `{ciphertext: bin, aad?: bin}` → plaintext. */
function decryptItem(ctx: CallContext, item: Value): Reply {
  const ct = binArg(item, "ciphertext", CIPHERTEXT_OVERHEAD + MAX_PLAINTEXT, false);
  const aad = binArg(item, "aad", MAX_AAD, true);
  if (ct === null || aad === null) return Reply.badRequest("ciphertext and aad must be bin");
  if (!ctx.spend(COST_AEAD_ITEM, COST_AEAD_BYTE, ct.length + aad.length)) return overBudget();
  return openCiphertext(ctx, ct, aad);
}

/** `{ciphertext: bin, aad?: bin}` → the same plaintext sealed under the latest version (same aad). */
function rewrapItem(ctx: CallContext, item: Value): Reply {
  const ct = binArg(item, "ciphertext", CIPHERTEXT_OVERHEAD + MAX_PLAINTEXT, false);
  const aad = binArg(item, "aad", MAX_AAD, true);
  if (ct === null || aad === null) return Reply.badRequest("ciphertext and aad must be bin");
  if (!ctx.spend(2 * COST_AEAD_ITEM, COST_REWRAP_BYTE, ct.length + aad.length)) return overBudget();
  const opened = openCiphertext(ctx, ct, aad);
  if (!opened.isOk) return opened;
  const pt = opened.value.asBytes();
  const out = sealLatest(ctx, pt, aad);
  wipe(pt); // the plaintext never leaves the enclave on a rewrap
  return Reply.ok(Value.bin(out));
}

const CIPHER_FIELDS: string[] = ["ciphertext", "aad"];
const ENCRYPT_FIELDS: string[] = ["plaintext", "aad"];

/** `encrypt {handle, plaintext, aad?}` | `{handle, batch: [{plaintext, aad?}]}`. */
function opEncrypt(args: Value): Reply {
  return runOp(args, T_SYMMETRIC, encryptItem, ENCRYPT_FIELDS, true);
}

/** `decrypt {handle, ciphertext, aad?}` | `{handle, batch: [{ciphertext, aad?}]}`. */
function opDecrypt(args: Value): Reply {
  return runOp(args, T_SYMMETRIC, decryptItem, CIPHER_FIELDS, true);
}

/** `rewrap {handle, ciphertext, aad?}` | `{handle, batch: [{ciphertext, aad?}]}`. */
function opRewrap(args: Value): Reply {
  return runOp(args, T_SYMMETRIC, rewrapItem, CIPHER_FIELDS, true);
}

/**
 * `{plaintext?: bool, aad?: bin}` → `{ciphertext, plaintext?}`: a fresh 32-byte data key, wrapped
 * as `encrypt` would; its plaintext only when asked for (`plaintext: true`), else zeroed here.
 */
function datakeyItem(ctx: CallContext, args: Value): Reply {
  const want = args.get("plaintext");
  if (!want.isNil() && !want.isBool()) return Reply.badRequest("plaintext must be a bool");
  const aad = binArg(args, "aad", MAX_AAD, true);
  if (aad === null) return Reply.badRequest("aad must be bin");
  const dk = randomBytes(DATA_KEY_BYTES);
  const ct = sealLatest(ctx, dk, aad);
  const out = Value.map().set("ciphertext", Value.bin(ct));
  if (want.asBool()) out.set("plaintext", Value.bin(dk));
  else wipe(dk);
  return Reply.ok(out);
}

/** `datakey {handle, plaintext?: bool, aad?: bin}`. */
function opDatakey(args: Value): Reply {
  return runOp(args, T_SYMMETRIC, datakeyItem, [], false);
}

// ---- signatures ----

/** `{message: bin}` → version u32 ‖ Ed25519 signature, under the latest version. */
function signItem(ctx: CallContext, item: Value): Reply {
  const msg = binArg(item, "message", MAX_PLAINTEXT, false);
  if (msg === null) return Reply.badRequest("message must be bin (≤ 1 MiB)");
  if (!ctx.spend(COST_SIGN_ITEM, COST_SIGN_BYTE, msg.length)) return overBudget();
  const kv = ctx.key.latest();
  const out = new Uint8Array(SIGNATURE_BYTES);
  store<u32>(out.dataStart, kv.version);
  out.set(ed25519Sign(msg, kv.material), 4);
  return Reply.ok(Value.bin(out));
}

/**
 * `{message: bin, signature: bin}` → bool. Malformed (not 68 bytes, version 0) is `bad_request`;
 * a version trimmed or never made is `false` (nothing can verify under it); a version below
 * min_decryption_version is `denied` (retired, as transit's ErrTooOld: not a verdict on the bytes).
 */
function verifyItem(ctx: CallContext, item: Value): Reply {
  const msg = binArg(item, "message", MAX_PLAINTEXT, false);
  const sig = binArg(item, "signature", SIGNATURE_BYTES, false);
  if (msg === null || sig === null || sig.length != SIGNATURE_BYTES) return Reply.badRequest("message and signature (68 bytes) must be bin");
  const v = readVersion(sig, 0);
  if (v == 0) return Reply.badRequest("malformed signature");
  if (v > ctx.key.latestVersion) return Reply.ok(Value.bool(false));
  const kv = ctx.key.version(v);
  if (kv === null) return Reply.ok(Value.bool(false));
  if (v < ctx.key.minDecryptionVersion) return Reply.err(ErrorCode.Denied, "key version below min_decryption_version");
  const fixed = COST_VERIFY_ITEM + (ctx.publicKeys.has(v) ? 0 : COST_PUBLIC_KEY);
  if (!ctx.spend(fixed, COST_VERIFY_BYTE, msg.length)) return overBudget();
  return Reply.ok(Value.bool(ed25519Verify(sig.subarray(4), msg, ctx.publicKey(kv))));
}

const SIGN_FIELDS: string[] = ["message"];
const VERIFY_FIELDS: string[] = ["message", "signature"];

/** `sign {handle, message}` | `{handle, batch: [{message}]}` (ed25519). */
function opSign(args: Value): Reply {
  return runOp(args, T_ED25519, signItem, SIGN_FIELDS, true);
}

/** `verify {handle, message, signature}` | `{handle, batch: [{message, signature}]}` (ed25519). */
function opVerify(args: Value): Reply {
  return runOp(args, T_ED25519, verifyItem, VERIFY_FIELDS, true);
}

// ---- MACs ----

/** `{data: bin}` → version u32 ‖ HMAC-SHA-256 under the latest version's MAC subkey. */
function macItem(ctx: CallContext, item: Value): Reply {
  const data = binArg(item, "data", MAX_PLAINTEXT, false);
  if (data === null) return Reply.badRequest("data must be bin (≤ 1 MiB)");
  if (!ctx.spend(COST_MAC_ITEM, COST_MAC_BYTE, data.length)) return overBudget();
  const kv = ctx.key.latest();
  const out = new Uint8Array(MAC_BYTES);
  store<u32>(out.dataStart, kv.version);
  out.set(hmacSha256(ctx.macKey(kv), data), 4);
  return Reply.ok(Value.bin(out));
}

/**
 * `{data: bin, mac: bin}` → bool, compared in constant time. Malformed (not 36 bytes, version 0) is
 * `bad_request`; a version trimmed or never made is `false`; below min_decryption_version `denied`.
 */
function verifyMacItem(ctx: CallContext, item: Value): Reply {
  const data = binArg(item, "data", MAX_PLAINTEXT, false);
  const mac = binArg(item, "mac", MAC_BYTES, false);
  if (data === null || mac === null || mac.length != MAC_BYTES) return Reply.badRequest("data and mac (36 bytes) must be bin");
  const v = readVersion(mac, 0);
  if (v == 0) return Reply.badRequest("malformed mac");
  if (v > ctx.key.latestVersion) return Reply.ok(Value.bool(false));
  const kv = ctx.key.version(v);
  if (kv === null) return Reply.ok(Value.bool(false));
  if (v < ctx.key.minDecryptionVersion) return Reply.err(ErrorCode.Denied, "key version below min_decryption_version");
  if (!ctx.spend(COST_MAC_ITEM, COST_MAC_BYTE, data.length)) return overBudget();
  const expected = hmacSha256(ctx.macKey(kv), data);
  const ok = equalBytes(expected, mac.subarray(4));
  wipe(expected); // a valid tag for the caller's data: never left behind
  return Reply.ok(Value.bool(ok));
}

const MAC_FIELDS: string[] = ["data"];
const VERIFY_MAC_FIELDS: string[] = ["data", "mac"];

/** `mac {handle, data}` | `{handle, batch: [{data}]}` (symmetric). */
function opMac(args: Value): Reply {
  return runOp(args, T_SYMMETRIC, macItem, MAC_FIELDS, true);
}

/** `verify_mac {handle, data, mac}` | `{handle, batch: [{data, mac}]}` (symmetric). */
function opVerifyMac(args: Value): Reply {
  return runOp(args, T_SYMMETRIC, verifyMacItem, VERIFY_MAC_FIELDS, true);
}

// ---- derive and public keys ----

/**
 * `{context: bin, peer_public_key?: bin32, length?: 1..64, version?: int}` → `{key: bin, version: int}`.
 * Symmetric: HKDF over the key itself; x25519: HKDF over X25519(key, peer), which must not be all
 * zeros (a small-order peer key: `bad_request`). `version` (default latest) below
 * min_decryption_version is `denied`, trimmed or unknown `not_found`.
 */
function deriveItem(ctx: CallContext, args: Value): Reply {
  const info = binArg(args, "context", MAX_AAD, false);
  if (info === null) return Reply.badRequest("context must be bin (≤ 64 KiB)");
  const lenV = args.get("length");
  let length = DERIVE_DEFAULT_BYTES;
  if (!lenV.isNil()) {
    if (!lenV.isInt() || lenV.asInt() < 1 || lenV.asInt() > <i64>DERIVE_MAX_BYTES) return Reply.badRequest("length must be 1..64");
    length = <i32>lenV.asInt();
  }
  const va = versionArg(args);
  if (va < 0) return Reply.badRequest("version must be an int ≥ 1");
  const key = ctx.key;
  const v: u32 = va == 0 ? key.latestVersion : <u32>va;
  const refused = readableVersion(key, v, true);
  if (refused !== null) return refused;
  const kv = key.version(v)!;
  const peerV = args.get("peer_public_key");
  let okm: Uint8Array;
  if (key.type == KeyType.X25519) {
    if (!peerV.isBin() || peerV.length != 32) return Reply.badRequest("peer_public_key must be a 32-byte bin");
    const shared = x25519(kv.material, peerV.asBytes());
    if (shared === null) return Reply.badRequest("peer_public_key gives an all-zero shared secret");
    okm = hkdfSha256(shared, DERIVE_SALT, info, length)!;
    wipe(shared);
  } else {
    if (!peerV.isNil()) return Reply.badRequest("peer_public_key is for x25519 keys");
    okm = hkdfSha256(kv.material, DERIVE_SALT, info, length)!;
  }
  return Reply.ok(Value.map().set("key", Value.bin(okm)).set("version", Value.int(<i64>v)));
}

/** `derive {handle, context, peer_public_key?, length?, version?}` (symmetric, x25519). */
function opDerive(args: Value): Reply {
  return runOp(args, T_SYMMETRIC | T_X25519, deriveItem, [], false);
}

/** `{version?: int}` → the 32-byte public key of that version (default latest). */
function publicKeyItem(ctx: CallContext, args: Value): Reply {
  const va = versionArg(args);
  if (va < 0) return Reply.badRequest("version must be an int ≥ 1");
  const key = ctx.key;
  const v: u32 = va == 0 ? key.latestVersion : <u32>va;
  const refused = readableVersion(key, v, false);
  if (refused !== null) return refused;
  const kv = key.version(v)!;
  const pub = key.type == KeyType.Ed25519 ? ed25519PublicKey(kv.material) : x25519PublicKey(kv.material);
  return Reply.ok(Value.bin(pub));
}

/** `public_key {handle, version?}` (ed25519, x25519). */
function opPublicKey(args: Value): Reply {
  return runOp(args, T_ED25519 | T_X25519, publicKeyItem, [], false);
}
