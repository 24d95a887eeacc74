// The vault's key management ops (index.ts lists them all): create, open, list, describe, rotate,
// configure, trim, destroy, export. Every mutation persists the key's new record (persist.ts) and
// replies with `persist`; the key is then pending until `commit` or `abort`, and a second mutation
// of it meanwhile is `conflict`. A bad handle is always `not_found` (keyring.ts).

import { Value, Reply, ErrorCode, SealPolicy, fillRandom } from "enclave/sdk";
import {
  KeyEntry, KeyVersion, Tracked, tracked, resolveTracked, handleOf, listNames, validKeyName, keyTypeOf,
  sealPolicyOf, MATERIAL_BYTES, MAX_KEYS, MAX_VERSIONS, KeyType,
} from "./keyring";
import { metaOf } from "./record";
import { persistMutation, admitNew } from "./persist";

function notFound(): Reply {
  return Reply.err(ErrorCode.NotFound, "no such key");
}

function pendingConflict(): Reply {
  return Reply.err(ErrorCode.Conflict, "the key has a pending change: commit or abort it first");
}

/** A u32 arg ≥ 1, or 0 when absent or out of range (the contract bounds it first). */
function u32Arg(v: Value): u32 {
  if (!v.isInt()) return 0;
  const n = v.asInt();
  return n >= 1 && n <= <i64>u32.MAX_VALUE ? <u32>n : 0;
}

/**
 * The key a mutation may change: resolved, live, not pending. On failure `error` is the reply.
 */
class Mutable {
  constructor(public t: Tracked | null, public error: Reply | null) {}
}

function mutable(handle: Value): Mutable {
  const t = resolveTracked(handle);
  if (t === null) return new Mutable(null, notFound());
  if (t.isPending()) return new Mutable(null, pendingConflict());
  return new Mutable(t, null);
}

/**
 * `create {name, type, exportable?, deletion_allowed?, seal_policy?}` → `{handle, key, persist}`.
 * The material (32 bytes) comes from `random`. `conflict` when the name is taken or pending,
 * `limit` at 1024 keys, `bad_request` for a bad name, type or policy.
 * @example host: `await vault.call('create', {name: 'billing', type: 'ed25519'})`
 */
export function opCreate(args: Value): Reply {
  const name = args.get("name").asString();
  if (!validKeyName(name)) return Reply.badRequest("name must match [a-z0-9][a-z0-9_.-]{0,63}");
  const type = keyTypeOf(args.get("type").asString());
  if (type < 0) return Reply.badRequest("type must be ed25519, x25519 or symmetric");
  let policy = SealPolicy.Signer;
  const p = args.get("seal_policy");
  if (!p.isNil()) {
    const chosen = sealPolicyOf(p.asString());
    if (chosen < 0) return Reply.badRequest("seal_policy must be measurement or signer");
    policy = <SealPolicy>chosen;
  }
  const refused = admitNew(name);
  if (refused !== null) return refused;

  const e = new KeyEntry();
  e.name = name;
  e.type = <KeyType>type;
  e.exportable = args.get("exportable").asBool();
  e.deletionAllowed = args.get("deletion_allowed").asBool();
  e.sealPolicy = policy;
  e.minDecryptionVersion = 1;
  e.minAvailableVersion = 1;
  e.latestVersion = 1;
  if (!fillRandom(e.slot(1))) return Reply.err(ErrorCode.Internal, "no randomness");
  const persisted = persistMutation(tracked(name), e);
  if (persisted.error !== null) return persisted.error!;
  const t = tracked(name)!;
  return Reply.ok(Value.map().set("handle", Value.bin(handleOf(t))).set("key", metaOf(e)).set("persist", persisted.value));
}

/**
 * `open {name}` → `{handle, key}`; `not_found` for an unknown or destroyed name.
 * @example host: `const {handle} = await vault.call('open', {name: 'billing'})`
 */
export function opOpen(args: Value): Reply {
  const name = args.get("name").asString();
  const t = validKeyName(name) ? tracked(name) : null;
  if (t === null || t.current.destroyed) return notFound();
  return Reply.ok(Value.map().set("handle", Value.bin(handleOf(t))).set("key", metaOf(t.current)));
}

/**
 * `list {after?, limit?}` → the names of live keys, sorted, after `after`, at most `limit` (default and most 1024).
 * @example host: `await vault.call('list', {after: 'billing', limit: 100})`
 */
export function opList(args: Value): Reply {
  const after = args.get("after").asString();
  const limitV = args.get("limit");
  let limit = MAX_KEYS;
  if (!limitV.isNil()) {
    if (!limitV.isInt() || limitV.asInt() < 1 || limitV.asInt() > <i64>MAX_KEYS) return Reply.badRequest("limit must be 1..1024");
    limit = <i32>limitV.asInt();
  }
  const names = listNames(after, limit);
  const out = Value.array();
  for (let i = 0; i < names.length; i++) out.push(Value.str(unchecked(names[i])));
  return Reply.ok(out);
}

/**
 * `describe {handle}` → meta (the latest record, pending or not).
 * @example host: `await vault.call('describe', {handle})`
 */
export function opDescribe(args: Value): Reply {
  const t = resolveTracked(args.get("handle"));
  if (t === null) return notFound();
  return Reply.ok(metaOf(t.current));
}

/**
 * `rotate {handle}` → `{version, persist}`: a new latest version; `limit` at 64 live versions (trim first).
 * @example host: `const {version, persist} = await vault.call('rotate', {handle})`
 */
export function opRotate(args: Value): Reply {
  const m = mutable(args.get("handle"));
  if (m.error !== null) return m.error!;
  const t = m.t!;
  const cur = t.current;
  if (cur.versionCount() >= MAX_VERSIONS) return Reply.err(ErrorCode.Limit, "at most 64 live versions: trim first");
  if (cur.latestVersion == u32.MAX_VALUE) return Reply.err(ErrorCode.Limit, "no version number left");
  const next = cur.clone();
  next.latestVersion = cur.latestVersion + 1;
  // The new version's slot is free: fewer than 64 versions are live (checked above).
  if (!fillRandom(next.slot(next.latestVersion))) return Reply.err(ErrorCode.Internal, "no randomness");
  const persisted = persistMutation(t, next);
  if (persisted.error !== null) return persisted.error!;
  return Reply.ok(Value.map().set("version", Value.int(<i64>next.latestVersion)).set("persist", persisted.value));
}

/**
 * `configure {handle, min_decryption_version?, deletion_allowed?}` → `{key, persist}`.
 * `min_decryption_version` must lie in min_available_version..latest_version (`bad_request`).
 * @example host: `await vault.call('configure', {handle, min_decryption_version: 3})`
 */
export function opConfigure(args: Value): Reply {
  const m = mutable(args.get("handle"));
  if (m.error !== null) return m.error!;
  const t = m.t!;
  const next = t.current.clone();
  const minDec = args.get("min_decryption_version");
  if (!minDec.isNil()) {
    const v = u32Arg(minDec);
    if (v < next.minAvailableVersion || v > next.latestVersion) {
      return Reply.badRequest("min_decryption_version must lie between min_available_version and latest_version");
    }
    next.minDecryptionVersion = v;
  }
  const del = args.get("deletion_allowed");
  if (!del.isNil()) {
    if (!del.isBool()) return Reply.badRequest("deletion_allowed must be a bool");
    next.deletionAllowed = del.asBool();
  }
  const persisted = persistMutation(t, next);
  if (persisted.error !== null) return persisted.error!;
  return Reply.ok(Value.map().set("key", metaOf(next)).set("persist", persisted.value));
}

/**
 * `trim {handle, min_available_version}` → `{key, persist}`: versions below are dropped (their
 * material is zeroed when the trim commits). It must lie in the current min_available_version ..
 * min_decryption_version (which is ≤ latest): `bad_request` otherwise.
 * @example host: `await vault.call('trim', {handle, min_available_version: 3})`
 */
export function opTrim(args: Value): Reply {
  const m = mutable(args.get("handle"));
  if (m.error !== null) return m.error!;
  const t = m.t!;
  const cur = t.current;
  const v = u32Arg(args.get("min_available_version"));
  if (v < cur.minAvailableVersion || v > cur.minDecryptionVersion) {
    return Reply.badRequest("min_available_version must lie between the current one and min_decryption_version");
  }
  const next = cur.clone();
  next.minAvailableVersion = v;
  const persisted = persistMutation(t, next);
  if (persisted.error !== null) return persisted.error!;
  return Reply.ok(Value.map().set("key", metaOf(next)).set("persist", persisted.value));
}

/**
 * `destroy {handle}` → `{persist}`: a tombstone record (no material); `denied` unless
 * deletion_allowed. The handle is `not_found` at once; the material is zeroed and the slot freed
 * when the destroy commits (an abort brings the key back, same handle).
 * @example host: `const {persist} = await vault.call('destroy', {handle})`
 */
export function opDestroy(args: Value): Reply {
  const m = mutable(args.get("handle"));
  if (m.error !== null) return m.error!;
  const t = m.t!;
  if (!t.current.deletionAllowed) return Reply.err(ErrorCode.Denied, "deletion is not allowed for this key");
  const next = t.current.clone();
  next.destroyed = true;
  next.slab = null; // the committed record keeps the material until the destroy commits
  const persisted = persistMutation(t, next);
  if (persisted.error !== null) return persisted.error!;
  return Reply.ok(Value.map().set("persist", persisted.value));
}

/**
 * `export {handle, version?}` → the version's material (default: latest), only for a key created
 * exportable: `denied` otherwise; `not_found` for a trimmed or unknown version.
 * @example host: `const material = await vault.call('export', {handle, version: 2})`
 */
export function opExport(args: Value): Reply {
  const t = resolveTracked(args.get("handle"));
  if (t === null) return notFound();
  const e = t.usable();
  if (e === null) return notFound();
  if (!e.exportable) return Reply.err(ErrorCode.Denied, "the key is not exportable");
  const vv = args.get("version");
  let kv: KeyVersion | null;
  if (vv.isNil()) {
    kv = e.latest();
  } else {
    const v = u32Arg(vv);
    kv = v == 0 ? null : e.version(v);
  }
  if (kv === null) return Reply.err(ErrorCode.NotFound, "no such version");
  return Reply.ok(Value.bin(kv.material.slice()));
}
