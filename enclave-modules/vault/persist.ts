// The vault's persistence protocol (two-phase, per key) and its ops: commit, abort,
// load, export_sealed, import_sealed, reseal.
//
// A vault is identified by a 16-byte vault id the host keeps in its store (`init`, once per
// instance, before any other op): two vaults (two stores) on one platform running one module share
// the module's counter namespace, so every counter id and record aad binds the vault id, or a commit
// in one vault would make the other's record of the same key name `rollback`.
//
// Each key record is one VERSIONED sealed blob (enclave/sdk/sealed): counter id = the first 8 bytes
// of SHA-256("vault/key/" ‖ vault_id ‖ name) read as a u64 LE, aad = "enclave-vault/key/v2\0" ‖
// vault_id ‖ name. A
// mutation seals the new record (PENDING: one above the counter) and replies `persist: {name,
// version, blob}`; the host stores the blob durably, then calls `commit` (the counter advances: every
// older copy is refused from then on) or, when the store refused it, `abort` (the record returns to
// the committed one). Until then any other mutation of that key is `conflict`.
//
// `export_sealed` seals a record UNVERSIONED under aad "enclave-vault/export/v1": a copy to move a
// key to another host or module (who can open it is the policy's business: this module's
// measurement, or its signer's line); `import_sealed` makes a new key of it.

import { Value, Reply, ErrorCode, errorCodeName, SealPolicy } from "enclave/sdk";
import { seal, unseal, commitSealed, reseal } from "enclave/sdk/sealed";
import { sha256, wipe } from "enclave/sdk/crypto";
import {
  KeyEntry, Tracked, tracked, track, untrack, syncSlot, liveKeys, trackedNames, handleOf, resolveTracked,
  wipeDropped, validKeyName, sealPolicyOf, MAX_KEYS, MAX_RECORDS,
} from "./keyring";
import { encodeRecord, decodeRecord, metaOf, MAX_RECORD_BYTES } from "./record";

/** The most blobs one `load` takes. */
export const MAX_LOAD: i32 = 256;
const KEY_AAD_PREFIX = "enclave-vault/key/v2\0";
const EXPORT_AAD = "enclave-vault/export/v1";
const COUNTER_LABEL = "vault/key/";

/** The bytes of a vault id. */
export const VAULT_ID_BYTES: i32 = 16;

/** This instance's vault id, set once by `init`; null until then (no key op may run). */
let vaultId: Uint8Array | null = null;

/** Whether `init` has run on this instance. @example `if (!initialized()) return notInitialized();` */
export function initialized(): bool {
  return vaultId !== null;
}

/** The reply of an op called before `init` (the contract's `requires` refuses it first). @example `return notInitialized();` */
export function notInitialized(): Reply {
  return Reply.err(ErrorCode.State, "call init {vault_id} first");
}

/**
 * `init {vault_id: bin 16}` → nil: binds this instance to its vault. Again with the same id: a
 * no-op; with another id: `state` (one instance serves one vault); not 16 bytes: `bad_request`.
 * @example host: `await vault.call('init', {vault_id})` on every new instance, before `load`.
 */
export function opInit(args: Value): Reply {
  const v = args.get("vault_id");
  if (!v.isBin() || v.asBytes().length != VAULT_ID_BYTES) return Reply.badRequest("vault_id must be 16 bytes");
  const id = v.asBytes();
  const have = vaultId;
  if (have !== null) {
    let same = true;
    for (let i = 0; i < VAULT_ID_BYTES; i++) if (unchecked(have[i]) != unchecked(id[i])) same = false;
    return same ? Reply.ok() : Reply.err(ErrorCode.State, "this instance serves another vault");
  }
  vaultId = id.slice(); // our copy: the argument is a view into the request buffer
  return Reply.ok();
}

/** label ‖ vault id ‖ UTF-8 name. */
function bound(label: string, name: string): Uint8Array {
  const id = vaultId!;
  const l = String.UTF8.encode(label);
  const n = String.UTF8.encode(name);
  const out = new Uint8Array(l.byteLength + VAULT_ID_BYTES + n.byteLength);
  out.set(Uint8Array.wrap(l), 0);
  out.set(id, l.byteLength);
  out.set(Uint8Array.wrap(n), l.byteLength + VAULT_ID_BYTES);
  return out;
}

/**
 * The counter id of key `name` in this vault (never 0: 0 means "not versioned" to sealed.ts). Only
 * after `init`. @example `counterIdOf("a")`
 */
export function counterIdOf(name: string): u64 {
  const digest = sha256(bound(COUNTER_LABEL, name));
  const id = load<u64>(digest.dataStart);
  return id == 0 ? 1 : id;
}

function keyAad(name: string): Uint8Array {
  return bound(KEY_AAD_PREFIX, name);
}

function exportAad(): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(EXPORT_AAD));
}

// ---- mutations (key-ops.ts and import_sealed) ----

/**
 * The result of {@link persistMutation}: the `persist` value, or an error reply.
 * @example `const p = persistMutation(t, next); if (p.error !== null) return p.error!;`
 */
export class Persisted {
  constructor(public value: Value, public error: Reply | null) {}
}

/**
 * Seals `next` as the key's new record and makes it the PENDING current record of `t` (or of a new
 * tracked name when `t` is null: a create or import). The caller checked that `t` is not pending and
 * the bounds. On failure nothing changed and the material `next` added (not in `t.current`) is wiped.
 * @returns the `persist` map `{name, version, blob}` to put in the reply, or an error reply.
 * @example
 * ```ts
 * const p = persistMutation(t, next);
 * if (p.error !== null) return p.error!;
 * return Reply.ok(Value.map().set("persist", p.value));
 * ```
 */
export function persistMutation(t: Tracked | null, next: KeyEntry): Persisted {
  if (!initialized()) {
    wipeDropped(next, t === null ? null : t.current);
    return new Persisted(Value.nil(), notInitialized());
  }
  const plaintext = encodeRecord(next);
  const s = seal(plaintext, keyAad(next.name), next.sealPolicy, counterIdOf(next.name));
  wipe(plaintext);
  if (!s.ok) {
    wipeDropped(next, t === null ? null : t.current);
    return new Persisted(Value.nil(), Reply.err(s.code, "could not seal the key record"));
  }
  // The record must follow the committed one this instance holds. A counter further on means
  // another blob of this key was committed since (another instance on the same platform, or a
  // commit whose reply was lost and then aborted): sealing this stale record above it would roll
  // that acknowledged change back, with only the store's compare-and-set in the way.
  if (t !== null && t.committedVersion != 0 && s.counter != t.committedVersion + 1) {
    wipeDropped(next, t.current);
    return new Persisted(Value.nil(), Reply.err(ErrorCode.Conflict, "the key changed elsewhere since it was loaded: load it again"));
  }
  if (t === null) {
    const fresh = track(next);
    if (fresh === null) {
      wipeDropped(next, null);
      return new Persisted(Value.nil(), Reply.err(ErrorCode.Limit, "at most 1024 keys"));
    }
    t = fresh;
  } else {
    // Not pending, so `current` is the committed record (or a tombstone's).
    t.committed = t.current;
    t.current = next;
    // A create over a tombstone needs a slot now; a destroy keeps its slot until commit (an abort
    // revives the same handle). The caller checked the bound.
    if (!next.destroyed && !syncSlot(t)) {
      t.current = t.committed!; // as it was: not pending, current and committed are one record
      wipeDropped(next, t.current);
      return new Persisted(Value.nil(), Reply.err(ErrorCode.Limit, "at most 1024 keys"));
    }
  }
  t.pendingVersion = s.counter;
  t.pendingBlob = s.bytes;
  return new Persisted(persistValue(next.name, s.counter, s.bytes), null);
}

function persistValue(name: string, version: u64, blob: Uint8Array): Value {
  return Value.map().set("name", Value.str(name)).set("version", Value.uint(version)).set("blob", Value.bin(blob));
}

/** Returns `t` to its committed record, wiping what the pending one added; a key created here disappears. */
function revert(t: Tracked): void {
  const committed = t.committed;
  wipeDropped(t.current, committed);
  t.pendingVersion = 0;
  t.pendingBlob = null;
  if (committed === null) {
    untrack(t);
    return;
  }
  t.current = committed;
  syncSlot(t);
}

// ---- commit, abort ----

/** The counter value `v` names (an int ≥ 1), or 0 for anything else. */
function versionArg(v: Value): u64 {
  return v.isInt() && v.asInt() >= 1 ? <u64>v.asInt() : v.isUint() ? v.asUint() : 0;
}

/**
 * `commit {name, version}` → nil: advances the key's counter to the pending blob (which the host
 * has stored durably). Committing the committed version again is a no-op (a retry after a lost
 * reply). `conflict` when the version is not the pending one, or the counter moved (another writer
 * committed first: the pending record is dropped, as by `abort`); `not_found` for an unknown name.
 * @example host: `await vault.call('commit', {name, version})` after `store.put`.
 */
export function opCommit(args: Value): Reply {
  const name = args.get("name").asString();
  const version = versionArg(args.get("version"));
  const t = tracked(name);
  if (t === null) return Reply.err(ErrorCode.NotFound, "no such key");
  if (version == 0) return Reply.badRequest("version must be an int >= 1");
  if (!t.isPending()) {
    if (version == t.committedVersion) return Reply.ok();
    return Reply.err(ErrorCode.Conflict, "no pending record of that version");
  }
  if (version != t.pendingVersion) return Reply.err(ErrorCode.Conflict, "no pending record of that version");
  const rc = commitSealed(t.pendingBlob!);
  if (rc != 0) {
    // The counter moved past this blob: it can never become current. Anything else (the counter
    // unavailable) may pass: the record stays pending for a retry or an abort.
    if (rc == <i32>ErrorCode.Conflict) revert(t);
    return Reply.err(<ErrorCode>rc, "could not commit the key record");
  }
  const committed = t.committed;
  if (committed !== null) wipeDropped(committed, t.current);
  t.committed = t.current;
  t.committedVersion = t.pendingVersion;
  t.pendingVersion = 0;
  t.pendingBlob = null;
  // A committed destroy frees the slot now (its generation moves on: the old handles stay dead).
  syncSlot(t);
  return Reply.ok();
}

/**
 * `abort {name, version}` → nil: drops the pending record (the store refused it); the key is its
 * committed record again, and a key created by that mutation disappears. Aborting a version that is
 * neither pending nor committed (already aborted) is a no-op; `conflict` for the committed one.
 * @example host: `await vault.call('abort', {name, version})` when `store.put` failed.
 */
export function opAbort(args: Value): Reply {
  const name = args.get("name").asString();
  const version = versionArg(args.get("version"));
  if (version == 0) return Reply.badRequest("version must be an int >= 1");
  const t = tracked(name);
  if (t === null) return Reply.ok(); // a create that was aborted already
  if (!t.isPending() || version != t.pendingVersion) {
    return version > t.committedVersion && version != t.pendingVersion ? Reply.ok() : Reply.err(ErrorCode.Conflict, "that version is committed");
  }
  revert(t);
  return Reply.ok();
}

// ---- load ----

function loadFailure(code: ErrorCode): Value {
  return Value.map().set("ok", Value.bool(false)).set("code", Value.str(errorCodeName(code)));
}

/**
 * `load {blobs: [bin], names: [str]}` → `[{name, ok: true, stale?: true} | {ok: false, code}]`, one
 * per blob in order: opens each key blob stored under `names[i]`. A pending blob (stored, never
 * committed) is committed first. `stale`: sealed under a root that is not the current one, or an svn
 * below this module's: re-persist the key (`configure {handle}`) before that root is revoked. Codes: `unseal_failed` (changed, another name, another module, a revoked root),
 * `rollback` (older than its counter), `conflict` (the name is already loaded or known), `limit`,
 * `bad_request` (a name outside the pattern).
 * @example host: `await vault.call('load', {blobs, names})` at start.
 */
export function opLoad(args: Value): Reply {
  if (!initialized()) return notInitialized();
  const blobs = args.get("blobs");
  const names = args.get("names");
  if (!blobs.isArray() || !names.isArray() || blobs.length != names.length) {
    return Reply.badRequest("blobs and names must be arrays of the same length");
  }
  if (blobs.length > MAX_LOAD) return Reply.err(ErrorCode.Limit, "at most 256 blobs per load");
  const out = Value.array();
  for (let i = 0; i < blobs.length; i++) out.push(loadOne(blobs.at(i), names.at(i)));
  return Reply.ok(out);
}

function loadOne(blobV: Value, nameV: Value): Value {
  if (!blobV.isBin() || !nameV.isStr()) return loadFailure(ErrorCode.BadRequest);
  const name = nameV.asString();
  if (!validKeyName(name)) return loadFailure(ErrorCode.BadRequest);
  if (tracked(name) !== null) return loadFailure(ErrorCode.Conflict);
  if (trackedNames() >= MAX_RECORDS) return loadFailure(ErrorCode.Limit);
  const blob = blobV.asBytes();
  const u = unseal(blob, keyAad(name), MAX_RECORD_BYTES);
  if (!u.ok) return loadFailure(u.code);
  const rec = decodeRecord(u.bytes);
  wipe(u.bytes);
  // A key blob is versioned under its name's counter and holds that name: anything else was not
  // sealed by this protocol (the aad already binds the name; this is the second line).
  if (rec === null || rec.name != name || u.counterId != counterIdOf(name)) {
    if (rec !== null) wipeDropped(rec, null);
    return loadFailure(ErrorCode.UnsealFailed);
  }
  if (!rec.destroyed && liveKeys() >= MAX_KEYS) {
    wipeDropped(rec, null);
    return loadFailure(ErrorCode.Limit);
  }
  // The blob we keep is our own copy (the argument is a view into the request buffer).
  const own = blob.slice();
  if (u.pending) {
    const rc = commitSealed(own);
    if (rc != 0) {
      wipeDropped(rec, null);
      return loadFailure(<ErrorCode>rc);
    }
  }
  const t = track(rec);
  if (t === null) {
    wipeDropped(rec, null);
    return loadFailure(ErrorCode.Limit);
  }
  t.committed = rec;
  t.committedVersion = u.counter;
  const loaded = Value.map().set("name", Value.str(name)).set("ok", Value.bool(true));
  // Sealed under an older root or svn: the host moves it forward with any mutation (`configure
  // {handle}` with no change re-seals the record as it is), before it revokes that root.
  if (u.stale) loaded.set("stale", Value.bool(true));
  return loaded;
}

/**
 * `reseal_key {name}` → `{persist}`: the loaded record of `name` sealed again as it is, under the
 * platform's current root and this module's svn, live key or tombstone alike (a tombstone has no
 * handle, and its record must move too: left under a revoked root it never opens again, and its
 * store record blocks re-creating the name). Persisted like any mutation (commit or abort).
 * `not_found` for a name not loaded, `conflict` while the key has a pending change.
 * @example host: `await vault.call('reseal_key', {name: 'billing'})` after `enclave keys rotate`.
 */
export function opResealKey(args: Value): Reply {
  const name = args.get("name").asString();
  const t = validKeyName(name) ? tracked(name) : null;
  if (t === null) return Reply.err(ErrorCode.NotFound, "no such key");
  if (t.isPending()) return Reply.err(ErrorCode.Conflict, "the key has a pending change: commit or abort it first");
  const p = persistMutation(t, t.current.clone());
  if (p.error !== null) return p.error!;
  return Reply.ok(Value.map().set("persist", p.value));
}

// ---- export_sealed, import_sealed, reseal ----

/**
 * `export_sealed {handle, policy?: 'measurement'|'signer'}` → bin: the key's committed record
 * sealed UNVERSIONED (aad "enclave-vault/export/v1", no vault id: an export moves between vaults),
 * under `policy` (default: the key's own), for `import_sealed` on another host or module. An export
 * never widens who can open the key: a `measurement` key exports only under `measurement`
 * (`denied` for `signer`, which every module of the signer's line could open); a `signer` key under
 * either. `not_found` for a bad handle; `state` when the policy has no sealing key (no signer).
 * @example host: `const blob = await vault.call('export_sealed', {handle, policy: 'signer'})`
 */
export function opExportSealed(args: Value): Reply {
  const t = resolveTracked(args.get("handle"));
  if (t === null) return Reply.err(ErrorCode.NotFound, "no such key");
  const rec = t.usable();
  if (rec === null) return Reply.err(ErrorCode.NotFound, "no such key");
  let policy = rec.sealPolicy;
  const p = args.get("policy");
  if (!p.isNil()) {
    const chosen = sealPolicyOf(p.asString());
    if (chosen < 0) return Reply.badRequest("policy must be measurement or signer");
    if (rec.sealPolicy == SealPolicy.Measurement && chosen != <i32>SealPolicy.Measurement) {
      return Reply.err(ErrorCode.Denied, "a measurement-sealed key exports only under measurement");
    }
    policy = <SealPolicy>chosen;
  }
  const plaintext = encodeRecord(rec);
  const s = seal(plaintext, exportAad(), policy, 0);
  wipe(plaintext);
  if (!s.ok) return Reply.err(s.code, "could not seal the export");
  return Reply.ok(Value.bin(s.bytes));
}

/**
 * `import_sealed {blob, name?}` → `{handle, key: meta, persist}`: a new key from an `export_sealed`
 * blob (named `name`, or as exported), persisted like `create`. A key's ciphertexts bind its name
 * (crypto-ops.ts), so a key imported under another name does not decrypt the ones made under the
 * old name (`decrypt_failed`): keep the name to move a key, rename to fork one. `unseal_failed` for a blob this
 * module cannot open; `conflict` when the name is taken (or pending); `limit`; `bad_request`.
 * @example host: `await vault.call('import_sealed', {blob, name: 'copy'})`
 */
export function opImportSealed(args: Value): Reply {
  const blobV = args.get("blob");
  if (!blobV.isBin()) return Reply.badRequest("blob must be bin");
  const nameV = args.get("name");
  if (!nameV.isNil() && !(nameV.isStr() && validKeyName(nameV.asString()))) {
    return Reply.badRequest("name must match [a-z0-9][a-z0-9_.-]{0,63}");
  }
  const u = unseal(blobV.asBytes(), exportAad(), MAX_RECORD_BYTES);
  if (!u.ok) return Reply.err(u.code, "the export did not open");
  const rec = decodeRecord(u.bytes);
  wipe(u.bytes);
  if (rec === null || u.counterId != 0) {
    if (rec !== null) wipeDropped(rec, null);
    return Reply.err(ErrorCode.UnsealFailed, "the export did not open");
  }
  if (rec.destroyed) return Reply.badRequest("the export is of a destroyed key");
  if (!nameV.isNil()) rec.name = nameV.asString();
  const refused = admitNew(rec.name);
  if (refused !== null) {
    wipeDropped(rec, null);
    return refused;
  }
  const t = tracked(rec.name);
  const p = persistMutation(t, rec);
  if (p.error !== null) return p.error!;
  const now = tracked(rec.name)!;
  return Reply.ok(Value.map().set("handle", Value.bin(handleOf(now))).set("key", metaOf(rec)).set("persist", p.value));
}

/**
 * Whether a new key may take `name`: null if so, else the error reply (`conflict`: a live or pending
 * key has it; `limit`: 1024 keys, or 4096 names with tombstones). A destroyed, committed name may
 * be taken again (its counter continues).
 * @example `const refused = admitNew(name); if (refused !== null) return refused;`
 */
export function admitNew(name: string): Reply | null {
  const t = tracked(name);
  if (t !== null && (t.isPending() || !t.current.destroyed)) return Reply.err(ErrorCode.Conflict, "the name is taken");
  if (liveKeys() >= MAX_KEYS) return Reply.err(ErrorCode.Limit, "at most 1024 keys");
  if (t === null && trackedNames() >= MAX_RECORDS) return Reply.err(ErrorCode.Limit, "at most 4096 key names");
  return null;
}

/**
 * `reseal {blob}` → bin: an `export_sealed` blob sealed again under the platform's current root and
 * this module's svn (same policy): moves an export forward after a rotation or an upgrade.
 * `unseal_failed` for a blob this module cannot open.
 * @example host: `const fresh = await vault.call('reseal', {blob})`
 */
export function opReseal(args: Value): Reply {
  const blobV = args.get("blob");
  if (!blobV.isBin()) return Reply.badRequest("blob must be bin");
  const blob = blobV.asBytes();
  const u = unseal(blob, exportAad(), MAX_RECORD_BYTES);
  if (!u.ok) return Reply.err(u.code, "the export did not open");
  // Only a well-formed, unversioned key record is moved forward: reseal must not launder other blobs.
  const rec = decodeRecord(u.bytes);
  wipe(u.bytes);
  const good = rec !== null && u.counterId == 0;
  if (rec !== null) wipeDropped(rec, null);
  if (!good) return Reply.err(ErrorCode.UnsealFailed, "the export did not open");
  const r = reseal(blob, exportAad(), MAX_RECORD_BYTES);
  if (!r.ok) return Reply.err(r.code, "could not reseal the export");
  return Reply.ok(Value.bin(r.bytes));
}
