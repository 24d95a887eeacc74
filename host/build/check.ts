/**
 * The load check of a built module: it loads with the runtime (the contract parses, imports match
 * the declared capabilities, a memory maximum), its memory maximum is the contract's
 * `limits.memoryPages`, it starts (its top-level code runs under the contract's fuel, with the
 * capabilities it declares, a platform that has no keys), and every op of the contract has a handler.
 *
 * Handlers are found with the SDK's probe (docs/ABI.md §4.1): `{op, probe: true}` answers `{ok: nil}`
 * when the op is registered and `unknown_op` otherwise, without calling the handler. The host's
 * call path never sends `probe` (its request frame has only `op` and `args`), so only this check
 * can ask. The module is instantiated here with the plain WebAssembly API and harmless imports: its
 * start function (the module's top-level code, which registers the ops) runs again, unmetered, once
 * it has run under fuel above; no handler does.
 */
import { Packr, Unpackr } from 'msgpackr';
import { EnclaveError, type ErrorCode } from '../../core/index.js';
import { compileEnclave, type Contract, type EnclavePlatform } from '../../runtime/index.js';

/** Thrown by the stub `enclave.abort`: the module aborted (`enclave_abort`). */
class Aborted extends Error {}

/** The platform of the start check: no sealing key, no evidence (the imports answer "unavailable"). */
const NO_PLATFORM: EnclavePlatform = Object.freeze({
  platform: 'enclave-build',
  getSealingSecret(): Uint8Array {
    throw new Error('No sealing key while building.');
  },
  getEvidence(): string {
    throw new Error('No evidence while building.');
  },
});

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/**
 * Checks a built module against its contract.
 * @param where - the module's directory, for messages.
 * @throws {EnclaveError} `build_failed` naming what is wrong.
 */
export async function checkBuilt(bytes: Uint8Array, contract: Contract, where: string): Promise<void> {
  try {
    const mod = await compileEnclave(bytes, { cacheDir: false });
    const maximum = mod.info.memories[0]?.maximum;
    if (maximum !== contract.limits.memoryPages) {
      throw new EnclaveError('memory_limit', `Its memory maximum is ${String(maximum)} pages; its contract says ${contract.limits.memoryPages}.`);
    }
    // The contract's own limits as the policy (the host's default policy would cap them), and every
    // capability it declares: what a host that accepts the contract as it is would do.
    const enclave = mod.create({ capabilities: contract.capabilities, attestation: NO_PLATFORM, policy: { ...contract.limits } });
    await enclave.close();
  } catch (err) {
    const code = err instanceof EnclaveError ? err.code : 'internal';
    // The runtime's trap message is for a caller; an author needs the usual causes at start.
    const hint =
      code === 'trap'
        ? ' Its top-level code trapped: a failed assert or index, or a capability (randomBytes, nowMillis, log, sealKey, report) called at top level, where the host cannot serve it yet (docs/SDK.md).'
        : '';
    throw new EnclaveError('build_failed', `The module built from ${where} does not load (${code}): ${(err as Error).message}${hint}`, { cause: err });
  }
  const missing = await opsWithoutHandler(bytes, contract, where);
  if (missing.length > 0) {
    const list = missing.map((op) => JSON.stringify(op)).join(', ');
    throw new EnclaveError(
      'build_failed',
      `The module built from ${where} has no handler for ${missing.length === 1 ? 'the contract op' : 'the contract ops'} ${list}: ` +
        `register ${missing.length === 1 ? 'it' : 'each'} with Enclave.op("<name>", handler) at top level, or remove ${missing.length === 1 ? 'it' : 'them'} from contract.json.`,
    );
  }
}

/** The contract's ops the module has no handler for, in contract order. */
async function opsWithoutHandler(bytes: Uint8Array, contract: Contract, where: string): Promise<string[]> {
  let memory: WebAssembly.Memory | undefined;
  const text = (ptr: number, len: number): string => {
    if (memory === undefined) return '';
    const view = new Uint8Array(memory.buffer);
    return new TextDecoder().decode(view.subarray(ptr, Math.min(ptr + Math.min(len, 256), view.length)));
  };
  // The imports of docs/ABI.md §3 (compileEnclave checked their names and types): harmless answers.
  const stubs: Record<string, (...args: number[]) => unknown> = {
    abort: (ptr, len) => {
      throw new Aborted(text(ptr!, len!));
    },
    random: (ptr, len) => {
      if (memory !== undefined) new Uint8Array(memory.buffer, ptr, len).fill(0);
      return 0;
    },
    now: () => 0n,
    log: () => undefined,
    seal_key: () => -3,
    report: () => -3,
  };
  const fail = (what: string, err?: unknown): never => {
    const why = err instanceof Aborted ? `it aborted: ${err.message}` : err instanceof Error ? err.message : 'no reply';
    throw new EnclaveError('build_failed', `The load check of the module built from ${where} failed ${what}: ${why}`, { cause: err });
  };
  let exports: Record<string, unknown>;
  try {
    const module = await WebAssembly.compile(bytes);
    const imports: Record<string, Record<string, unknown>> = { enclave: {} };
    for (const imp of WebAssembly.Module.imports(module)) imports.enclave![imp.name] = stubs[imp.name];
    exports = (await WebAssembly.instantiate(module, imports as WebAssembly.Imports)).exports as Record<string, unknown>;
  } catch (err) {
    return fail('when it started (its top-level code)', err);
  }
  memory = exports.memory as WebAssembly.Memory;
  const alloc = exports.enclave_alloc as (len: number) => number;
  const call = exports.enclave_call as (ptr: number, len: number) => number;
  const missing: string[] = [];
  for (const op of Object.keys(contract.ops)) {
    const request: Uint8Array = packr.pack({ op, probe: true });
    let reply: unknown;
    try {
      const ptr = alloc(request.length);
      if (ptr === 0) fail(`probing "${op}"`);
      new Uint8Array(memory.buffer).set(request, ptr);
      const desc = call(ptr, request.length);
      if (desc === 0) fail(`probing "${op}"`);
      const view = new DataView(memory.buffer);
      const at = view.getUint32(desc, true);
      const len = view.getUint32(desc + 4, true);
      reply = unpackr.unpack(new Uint8Array(memory.buffer).slice(at, at + len));
    } catch (err) {
      if (err instanceof EnclaveError) throw err;
      return fail(`probing "${op}"`, err);
    }
    const code = (reply as { err?: { code?: ErrorCode } } | null)?.err?.code;
    if (code === 'unknown_op') missing.push(op);
    else if (!(typeof reply === 'object' && reply !== null && 'ok' in reply)) {
      fail(`probing "${op}"`, new Error(`it answered ${JSON.stringify(reply)?.slice(0, 200)}`));
    }
  }
  return missing;
}
