// vault: a key vault enclave (VAULT.md §5). Keys are made inside from `random`, used inside, and
// leave only sealed (`persist` blobs, `export_sealed`) or, for a key created exportable, by `export`.
// Run it with `state: 'persistent'` and one instance: the keyring lives in this instance's memory,
// and the host persists every mutation (store the `persist` blob, then `commit`, or `abort`).
//
// Files: keyring.ts (keys, versions, handles), record.ts (a record's bytes), persist.ts (the
// two-phase persistence protocol and the sealed export), key-ops.ts (key management ops),
// crypto-ops.ts (the cryptographic ops).

import { Enclave } from "enclave/sdk";
import { opCreate, opOpen, opList, opDescribe, opRotate, opConfigure, opTrim, opDestroy, opExport } from "./key-ops";
import { opCommit, opAbort, opLoad, opExportSealed, opImportSealed, opReseal } from "./persist";
import { registerCryptoOps } from "./crypto-ops";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

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
Enclave.op("export_sealed", opExportSealed);
Enclave.op("import_sealed", opImportSealed);
Enclave.op("reseal", opReseal);
registerCryptoOps();
