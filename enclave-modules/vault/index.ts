// vault: a key vault enclave. Keys are made inside from `random`, used inside, and leave only
// sealed (`persist` blobs, `export_sealed`) or, for a key created exportable, by `export`. Run it
// with `state: 'persistent'` and one instance (the keyring lives in this instance's memory), the
// capabilities random, seal and counter, and a fuel policy up to the contract's (a batch of 256
// signatures). The host (host/vault/) persists every mutation: it stores the `persist` blob under
// `vault/<name>`, then calls `commit`; if the store refuses it, `abort`.
//
// Bounds: 1024 keys, 64 live versions a key, names [a-z0-9][a-z0-9_.-]{0,63}, 256 blobs a load,
// 256 items a batch, 1 MiB a message. Errors: a bad handle or unknown name/version `not_found`; a
// second mutation while one is pending `conflict`; a policy refusal `denied`; a bound `limit`.
//
// Ops (args → reply; every op but `init` requires `init` first (the contract's `requires`, and
// `state` inside); `key` is {name, type, latest_version, min_decryption_version,
// min_available_version, exportable, deletion_allowed, seal_policy}; `persist` is {name, version, blob}):
//   init {vault_id: bin 16} → nil (once per instance; another id → state; persist.ts)
//   create {name, type: ed25519|x25519|symmetric, exportable?, deletion_allowed?, seal_policy?: measurement|signer (default)}
//                                                   → {handle, key, persist}
//   open {name} → {handle, key}                      list {after?, limit?} → [name] (sorted)
//   describe {handle} → key                          rotate {handle} → {version, persist}
//   configure {handle, min_decryption_version?, deletion_allowed?} → {key, persist}
//   trim {handle, min_available_version} → {key, persist}       destroy {handle} → {persist} (deletion_allowed only)
//   export {handle, version?} → material (exportable only)
//   commit {name, version} → nil                     abort {name, version} → nil
//   load {blobs: [bin], names: [str]} → [{name, ok: true, stale?: true} | {ok: false, code}]
//   reseal_key {name} → {persist} (live key or tombstone: re-sealed as it is, after a root rotation)
//   export_sealed {handle, policy?} → bin            import_sealed {blob, name?} → {handle, key, persist}
//   reseal {blob} → bin       (import under another name: the old name's ciphertexts do not decrypt)
//   encrypt, decrypt, rewrap, datakey, sign, verify, mac, verify_mac, derive, public_key: crypto-ops.ts
//
// Files: keyring.ts (keys, versions, handles), record.ts (a record's bytes), persist.ts (the
// two-phase persistence protocol and the sealed export), key-ops.ts (key management),
// crypto-ops.ts with crypto-format.ts and crypto-cost.ts (the cryptographic ops).

import { Enclave } from "enclave/sdk";
import { opCreate, opOpen, opList, opDescribe, opRotate, opConfigure, opTrim, opDestroy, opExport } from "./key-ops";
import { opInit, opCommit, opAbort, opLoad, opResealKey, opExportSealed, opImportSealed, opReseal } from "./persist";
import { registerCryptoOps } from "./crypto-ops";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

Enclave.op("init", opInit);
Enclave.op("create", opCreate);
Enclave.op("open", opOpen);
Enclave.op("list", opList);
Enclave.op("describe", opDescribe);
Enclave.op("rotate", opRotate);
Enclave.op("configure", opConfigure);
Enclave.op("trim", opTrim);
Enclave.op("destroy", opDestroy);
Enclave.op("export", opExport);
Enclave.op("commit", opCommit);
Enclave.op("abort", opAbort);
Enclave.op("load", opLoad);
Enclave.op("reseal_key", opResealKey);
Enclave.op("export_sealed", opExportSealed);
Enclave.op("import_sealed", opImportSealed);
Enclave.op("reseal", opReseal);
registerCryptoOps();
