// The vault's keyring: every key of this instance, in its linear memory, and the handles that name
// them (index.ts lists the vault's ops; the persistence of a record is persist.ts).
//
// A key is tracked as up to two records: `current` (what management ops read and mutate: the last
// mutation, possibly PENDING, not yet acknowledged as durable by the host) and `committed` (the state
// of the last committed blob). Crypto ops (crypto-ops.ts) see the committed record through
// `resolveHandle` while a mutation is pending, so nothing is ever encrypted under a version that an
// `abort` could take back. A key created in this instance and not committed yet has only `current`.
//
// Handles are 16 bytes: slot u32 LE ‖ generation u32 LE ‖ the first 8 bytes of
// HMAC-SHA-256(sessionKey, "vault/handle" ‖ slot ‖ generation). The session key is 32 random bytes
// made on the first call that needs one, so a handle from another instance (or before a restart) does
// not verify. Destroying a key frees its slot and bumps the slot's generation, so its handles stay
// dead after the slot holds another key. Every bad handle is `null` (the caller replies `not_found`):
// the MAC is compared in constant time and before the slot and generation are looked at.

import { Value, SealPolicy, randomBytes } from "enclave/sdk";
import { hmacSha256, equalBytes, wipe } from "enclave/sdk/crypto";

/** The most keys (not destroyed) one vault holds. */
export const MAX_KEYS: i32 = 1024;
/** The most tracked names, destroyed ones (tombstones) included: the platform's counter bound. */
export const MAX_RECORDS: i32 = 4096;
/** The most live versions of one key (latest - min_available + 1). */
export const MAX_VERSIONS: i32 = 64;
/** The bytes of key material of every key type. */
export const MATERIAL_BYTES: i32 = 32;
/** A handle's length in bytes. */
export const HANDLE_BYTES: i32 = 16;
/** The most bytes of a key name. */
export const MAX_NAME_BYTES: i32 = 64;

/** The key types (their wire names are `keyTypeName`). */
export enum KeyType {
  Ed25519 = 0,
  X25519 = 1,
  Symmetric = 2,
}

/** The wire name of `t`: `ed25519`, `x25519` or `symmetric`. @example `keyTypeName(KeyType.X25519) == "x25519"` */
export function keyTypeName(t: KeyType): string {
  if (t == KeyType.Ed25519) return "ed25519";
  if (t == KeyType.X25519) return "x25519";
  return "symmetric";
}

/** The key type of wire name `s`, or -1. @example `keyTypeOf("ed25519") == KeyType.Ed25519` */
export function keyTypeOf(s: string): i32 {
  if (s == "ed25519") return KeyType.Ed25519;
  if (s == "x25519") return KeyType.X25519;
  if (s == "symmetric") return KeyType.Symmetric;
  return -1;
}

/** The wire name of a seal policy: `measurement` or `signer`. @example `sealPolicyName(SealPolicy.Signer) == "signer"` */
export function sealPolicyName(p: SealPolicy): string {
  return p == SealPolicy.Measurement ? "measurement" : "signer";
}

/** The seal policy of wire name `s`, or -1. @example `sealPolicyOf("signer") == SealPolicy.Signer` */
export function sealPolicyOf(s: string): i32 {
  if (s == "measurement") return <i32>SealPolicy.Measurement;
  if (s == "signer") return <i32>SealPolicy.Signer;
  return -1;
}

/**
 * Whether `name` matches `[a-z0-9][a-z0-9_.-]{0,63}` (ASCII only, so its UTF-8 is its length).
 * @example `validKeyName("billing.v2")`
 */
export function validKeyName(name: string): bool {
  const n = name.length;
  if (n < 1 || n > MAX_NAME_BYTES) return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    const alnum = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
    if (!(alnum || (i > 0 && (c == 0x5f || c == 0x2e || c == 0x2d)))) return false;
  }
  return true;
}

/** The bytes of one key's material: a slot of 32 bytes for each of its (at most 64) live versions. */
const SLAB_BYTES: i32 = MAX_VERSIONS * MATERIAL_BYTES;

/**
 * One version of a key: its number (1, 2, ...) and its 32 secret bytes (an Ed25519 seed, an X25519
 * secret or a symmetric key), a view into the key's material: made for the call that asked for it.
 * The bytes are zeroed when the version is trimmed (on commit), its key destroyed (on commit), or
 * the rotation that made it aborted.
 * @example `const v = entry.latest(); sign(msg, v.material);`
 */
export class KeyVersion {
  constructor(
    /** The version number, ≥ 1. */
    public version: u32,
    /** 32 bytes, owned by the keyring: never modify or keep it beyond the call. */
    public material: Uint8Array,
  ) {}
}

/**
 * A key's record. Versions `minAvailableVersion..latestVersion` are all present (trim removes the
 * oldest, at most 64 live); `minAvailableVersion ≤ minDecryptionVersion ≤ latestVersion`. A destroyed
 * record (a tombstone) has no versions and no material.
 *
 * The material lives in one 2 KiB slab per key, version v in slot v % 64 (no object per version:
 * 1024 keys of 64 versions would be 65536 objects, more than a 16 MiB instance can keep with the
 * collector's headroom). A mutation's record shares the slab with the committed one: the versions
 * of the two together are at most 64 consecutive numbers (a rotation needs fewer than 64 live
 * versions, and a key has one pending mutation at most), so their slots never collide.
 * @example
 * ```ts
 * const key = resolveHandle(args.get("handle"));
 * if (key === null) return Reply.err(ErrorCode.NotFound, "no such key");
 * const v = key.version(wanted);
 * ```
 */
export class KeyEntry {
  name: string = "";
  type: KeyType = KeyType.Symmetric;
  /** Whether `export` may return the material (set at create only). */
  exportable: bool = false;
  /** Whether `destroy` is allowed (`configure` changes it). */
  deletionAllowed: bool = false;
  /** The policy the key's records are sealed under (chosen at create). */
  sealPolicy: SealPolicy = SealPolicy.Signer;
  /** Versions below are refused by decrypt (`denied`). */
  minDecryptionVersion: u32 = 1;
  /** Versions below are trimmed (gone). */
  minAvailableVersion: u32 = 1;
  latestVersion: u32 = 0;
  /** A tombstone: the key was destroyed; no versions, no slab. */
  destroyed: bool = false;
  /** The material slots (null for a tombstone, or before the first version). */
  slab: ArrayBuffer | null = null;

  /** How many versions are live (0 for a tombstone). @example `if (key.versionCount() >= MAX_VERSIONS) ...` */
  versionCount(): i32 {
    if (this.destroyed || this.latestVersion < this.minAvailableVersion) return 0;
    return <i32>(this.latestVersion - this.minAvailableVersion + 1);
  }

  /** Whether version `v` is live. @example `if (!key.has(3)) return notFound();` */
  has(v: u32): bool {
    return !this.destroyed && this.slab !== null && v >= this.minAvailableVersion && v <= this.latestVersion && v >= 1;
  }

  /**
   * The latest version. Every live key has one (aborts otherwise: a keyring invariant).
   * @throws aborts the call (trap) on a destroyed key, which `resolveHandle` never returns.
   * @example `const v = key.latest();`
   */
  latest(): KeyVersion {
    assert(this.has(this.latestVersion), "vault: a key without versions");
    return new KeyVersion(this.latestVersion, this.slot(this.latestVersion));
  }

  /**
   * Version `v`, or null when it was trimmed or never existed.
   * @example `const kv = key.version(4); if (kv === null) return Reply.err(ErrorCode.NotFound, "no such version");`
   */
  version(v: u32): KeyVersion | null {
    return this.has(v) ? new KeyVersion(v, this.slot(v)) : null;
  }

  /**
   * The 32 bytes of version `v`'s slot (a view: writing it sets the material). The caller checked
   * that `v` is live or is the version being added.
   * @example `fillRandom(next.slot(next.latestVersion));`
   */
  slot(v: u32): Uint8Array {
    let slab = this.slab;
    if (slab === null) {
      slab = new ArrayBuffer(SLAB_BYTES);
      this.slab = slab;
    }
    return Uint8Array.wrap(slab, <i32>(v % <u32>MAX_VERSIONS) * MATERIAL_BYTES, MATERIAL_BYTES);
  }

  /** A copy of the record sharing its slab (a snapshot before a mutation). @example `const before = key.clone();` */
  clone(): KeyEntry {
    const c = new KeyEntry();
    c.name = this.name;
    c.type = this.type;
    c.exportable = this.exportable;
    c.deletionAllowed = this.deletionAllowed;
    c.sealPolicy = this.sealPolicy;
    c.minDecryptionVersion = this.minDecryptionVersion;
    c.minAvailableVersion = this.minAvailableVersion;
    c.latestVersion = this.latestVersion;
    c.destroyed = this.destroyed;
    c.slab = this.slab;
    return c;
  }

  /** Whether the record's invariants hold (checked on every record read back). @example `if (!rec.wellFormed()) ...` */
  wellFormed(): bool {
    if (!validKeyName(this.name)) return false;
    if (<i32>this.type < 0 || <i32>this.type > 2) return false;
    if (this.destroyed) return this.slab === null;
    const lo = this.minAvailableVersion, hi = this.latestVersion;
    if (lo < 1 || lo > hi || this.minDecryptionVersion < lo || this.minDecryptionVersion > hi) return false;
    if (<u64>hi - <u64>lo + 1 > <u64>MAX_VERSIONS) return false;
    const slab = this.slab;
    return slab !== null && slab.byteLength == SLAB_BYTES;
  }
}

/**
 * A name's state in the keyring: its records and its persistence (persist.ts drives it).
 * @example `const t = tracked("billing"); if (t !== null && t.isPending()) return conflict();`
 */
export class Tracked {
  /** The newest record (pending or committed). */
  current: KeyEntry;
  /** The record of the last committed blob; null if none (created here and not committed yet). */
  committed: KeyEntry | null = null;
  /** The counter value of the last committed blob (0: none). */
  committedVersion: u64 = 0;
  /** The counter value of the pending blob (0: none pending). */
  pendingVersion: u64 = 0;
  /** The pending blob (public bytes: a sealed blob), kept for `commit`. */
  pendingBlob: Uint8Array | null = null;
  /** The slot of a live key, or -1 (destroyed). */
  slot: i32 = -1;

  constructor(current: KeyEntry) {
    this.current = current;
  }

  /** Whether a mutation awaits commit or abort. @example `if (t.isPending()) ...` */
  isPending(): bool {
    return this.pendingVersion != 0;
  }

  /**
   * What crypto ops and exports use: the committed record while a mutation is pending, else the
   * current one; null when that record is a tombstone or there is none (a create or import not
   * committed yet: an abort would take the key back, so nothing may be used or exported under it).
   * @example `const e = t.usable(); if (e === null) return notFound();`
   */
  usable(): KeyEntry | null {
    const e = this.isPending() ? this.committed : this.current;
    return e === null || e.destroyed ? null : e;
  }
}

// ---- the registry ----

const byName = new Map<string, Tracked>();
/** Live keys (tracked, not destroyed). */
let liveCount: i32 = 0;
const slotOwners = new Array<Tracked | null>();
const slotGenerations = new Array<u32>();
const freeSlots = new Array<i32>();
let sessionKey: Uint8Array | null = null;
const HANDLE_LABEL = "vault/handle";

/** The tracked state of `name`, or null. @example `const t = tracked(name);` */
export function tracked(name: string): Tracked | null {
  return byName.has(name) ? byName.get(name) : null;
}

/** How many keys are live. @example `if (liveKeys() >= MAX_KEYS) ...` */
export function liveKeys(): i32 {
  return liveCount;
}

/** How many names are tracked (tombstones included). @example `if (trackedNames() >= MAX_RECORDS) ...` */
export function trackedNames(): i32 {
  return byName.size;
}

/**
 * Starts tracking `current` under its name (the caller checked the name is free and the bounds); a
 * live record gets a slot. Returns null when no slot is left.
 * @example `const t = track(entry); if (t === null) return Reply.err(ErrorCode.Limit, "...");`
 */
export function track(current: KeyEntry): Tracked | null {
  const t = new Tracked(current);
  if (!current.destroyed && !assignSlot(t)) return null;
  byName.set(current.name, t);
  return t;
}

/** Stops tracking `t` entirely (an aborted create): its slot is released and its handles die. @example `untrack(t);` */
export function untrack(t: Tracked): void {
  releaseSlot(t);
  byName.delete(t.current.name);
}

/**
 * Gives `t` a slot if it is live and has none, or releases it if it is destroyed and has one:
 * call after `t.current` changed between live and destroyed. False when no slot is left.
 * @example `if (!syncSlot(t)) return Reply.err(ErrorCode.Limit, "too many keys");`
 */
export function syncSlot(t: Tracked): bool {
  if (t.current.destroyed) {
    releaseSlot(t);
    return true;
  }
  return t.slot >= 0 || assignSlot(t);
}

function assignSlot(t: Tracked): bool {
  if (liveCount >= MAX_KEYS) return false;
  let slot: i32;
  if (freeSlots.length > 0) {
    slot = freeSlots.pop();
  } else {
    slot = slotOwners.length;
    slotOwners.push(null);
    slotGenerations.push(0);
  }
  unchecked((slotOwners[slot] = t));
  t.slot = slot;
  liveCount++;
  return true;
}

function releaseSlot(t: Tracked): void {
  const slot = t.slot;
  if (slot < 0) return;
  unchecked((slotOwners[slot] = null));
  const gen = unchecked(slotGenerations[slot]);
  // Every handle of the slot dies with the bump. A slot whose generation would wrap is retired
  // (never reused) rather than resurrect a handle of 2^32 destroys ago.
  unchecked((slotGenerations[slot] = gen + 1));
  if (gen + 1 != u32.MAX_VALUE) freeSlots.push(slot);
  t.slot = -1;
  liveCount--;
}

/** The names of live keys, sorted, strictly after `after` (when not empty), at most `limit`. @example `listNames("", 100)` */
export function listNames(after: string, limit: i32): Array<string> {
  const all = new Array<string>();
  const values = byName.values();
  for (let i = 0; i < values.length; i++) {
    const t = unchecked(values[i]);
    if (!t.current.destroyed && (after.length == 0 || t.current.name > after)) all.push(t.current.name);
  }
  all.sort();
  return all.length > limit ? all.slice(0, limit) : all;
}

// ---- handles ----

function handleMac(slot: u32, gen: u32): Uint8Array {
  let key = sessionKey;
  if (key === null) {
    key = randomBytes(32);
    sessionKey = key;
  }
  const label = String.UTF8.encode(HANDLE_LABEL);
  const msg = new Uint8Array(label.byteLength + 8);
  memory.copy(msg.dataStart, changetype<usize>(label), <usize>label.byteLength);
  store<u32>(msg.dataStart + <usize>label.byteLength, slot);
  store<u32>(msg.dataStart + <usize>label.byteLength + 4, gen);
  return hmacSha256(key, msg);
}

/**
 * The handle of a tracked live key (16 bytes). Only management ops make handles.
 * @throws aborts (trap) when `t` has no slot: a destroyed key has no handle (a keyring invariant).
 * @example `reply.set("handle", Value.bin(handleOf(t)));`
 */
export function handleOf(t: Tracked): Uint8Array {
  assert(t.slot >= 0, "vault: handle of a destroyed key");
  const slot = <u32>t.slot;
  const gen = unchecked(slotGenerations[t.slot]);
  const mac = handleMac(slot, gen);
  const h = new Uint8Array(HANDLE_BYTES);
  store<u32>(h.dataStart, slot);
  store<u32>(h.dataStart + 4, gen);
  memory.copy(h.dataStart + 8, mac.dataStart, 8);
  wipe(mac);
  return h;
}

/**
 * The tracked key a handle names, or null for any bad handle (not a 16-byte bin, wrong MAC, stale
 * generation, free slot). For management ops; crypto ops use `resolveHandle`.
 * @example `const t = resolveTracked(args.get("handle")); if (t === null) return notFound();`
 */
export function resolveTracked(h: Value): Tracked | null {
  if (!h.isBin()) return null;
  const b = h.asBytes();
  if (b.length != HANDLE_BYTES) return null;
  const slot = load<u32>(b.dataStart);
  const gen = load<u32>(b.dataStart + 4);
  // The MAC first, in constant time, whatever the slot: a forged handle learns nothing from timing.
  const mac = handleMac(slot, gen);
  const good = equalBytes(mac.subarray(0, 8), b.subarray(8, HANDLE_BYTES));
  wipe(mac);
  if (!good) return null;
  if (slot >= <u32>slotOwners.length) return null;
  if (unchecked(slotGenerations[<i32>slot]) != gen) return null;
  const t = unchecked(slotOwners[<i32>slot]);
  if (t === null || t.current.destroyed) return null;
  return t;
}

/**
 * The key a handle names, as crypto ops must use it (the committed record while a mutation is
 * pending), or null for any bad handle: reply `not_found`.
 * @example
 * ```ts
 * const key = resolveHandle(args.get("handle"));
 * if (key === null) return Reply.err(ErrorCode.NotFound, "no such key");
 * if (key.type != KeyType.Symmetric) return Reply.badRequest("not a symmetric key");
 * ```
 */
export function resolveHandle(h: Value): KeyEntry | null {
  const t = resolveTracked(h);
  if (t === null) return null;
  return t.usable();
}

// ---- secrets ----

/**
 * Zeroes the material of every version of `from` that `keep` does not hold (the same slab and a
 * version in its range): what a commit does with the versions a trim or destroy dropped, and an
 * abort with a rotation's version or a create's.
 * @example `wipeDropped(t.committed!, t.current);`
 */
export function wipeDropped(from: KeyEntry, keep: KeyEntry | null): void {
  const slab = from.slab;
  if (slab === null || from.destroyed) return;
  const shared = keep !== null && !keep.destroyed && keep.slab === slab;
  for (let v = from.minAvailableVersion; v <= from.latestVersion && v >= 1; v++) {
    if (!(shared && keep!.has(v))) wipe(from.slot(v));
    if (v == u32.MAX_VALUE) break;
  }
}
