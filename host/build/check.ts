/**
 * The load check of a built module (`enclave build`; `enclave embed-contract` runs its parts,
 * ./embed.ts): it loads with the runtime (the contract parses, imports match
 * the declared capabilities, a memory maximum), its memory maximum is the contract's
 * `limits.memoryPages`, it starts (its top-level code runs under the contract's fuel, with the
 * capabilities it declares, a platform that has no keys), and every op of the contract has a handler.
 *
 * Handlers are found with the SDK's probe (docs/ABI.md §4.1): `{op, probe: true}` answers `{ok: nil}`
 * when the op is registered and `unknown_op` otherwise, without calling the handler. The host's
 * call path never sends `probe` (its request frame has only `op` and `args`), so only this check
 * can ask. For the probe the module is instantiated with the plain WebAssembly API and harmless
 * imports: its start function (the module's top-level code, which registers the ops) runs again,
 * unmetered, once it has run under fuel above, and then `enclave_call` runs once per op, unmetered
 * too (a module that does not use the SDK's `enclave_call` may loop there). So the probe runs in a
 * worker thread that is stopped after {@link LOAD_CHECK_DEADLINE_MS}: a loop that never ends fails the
 * build instead of hanging it or spinning the CLI's thread. No handler runs.
 */
import { inspect } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Packr, Unpackr } from 'msgpackr';
import { EnclaveError, isComponent, readComponentInfo, type ErrorCode } from '../../core/index.js';
import { compileEnclave, type Contract, type EnclaveModule, type EnclavePlatform } from '../../runtime/index.js';

/**
 * How long the probe (the module's top-level code again, then one `enclave_call` per op) may take,
 * ms. Far more than it takes: the same top-level code has just finished under the contract's fuel
 * (capped at MAX_FUEL, seconds of work at most), and the SDK answers a probe without calling a handler.
 */
export const LOAD_CHECK_DEADLINE_MS = 60_000;

/** The platform of the start check: no sealing key, no evidence, no counters (the imports answer "unavailable"). */
const NO_PLATFORM: EnclavePlatform = Object.freeze({
  platform: 'enclave-build',
  getSealingSecret(): Uint8Array {
    throw new Error('No sealing key while building.');
  },
  getEvidence(): string {
    throw new Error('No evidence while building.');
  },
  // Present so that a contract declaring `counter` is granted it (the grant rule asks for both).
  readCounter(): never {
    throw new Error('No counters while building.');
  },
  advanceCounter(): never {
    throw new Error('No counters while building.');
  },
});

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** How a module's memory maximum must relate to its contract's `limits.memoryPages`. */
export type MemoryRule =
  /** Equal: `enclave build` gives the SDK `memoryPages` as the module's maximum, so anything else is a bug. */
  | 'exact'
  /** At most: a module from another toolchain may declare less (the runtime refuses more, memory_limit). */
  | 'within';

/**
 * The load check: the module compiles with the runtime (the contract parses, imports match the
 * declared capabilities, a memory maximum), its memory maximum fits `limits.memoryPages` by `rule`,
 * and it starts (its top-level code runs under the contract's fuel, with the capabilities it
 * declares and a platform without keys). Errors are the runtime's own, unwrapped.
 * @throws {EnclaveError} the runtime's code (`invalid_module`, `invalid_contract`, `capability_denied`,
 *   `memory_limit`, `trap`, `fuel_exhausted`, ...).
 * @example
 * await checkLoads(bytes, contract, 'within');
 */
export async function checkLoads(bytes: Uint8Array, contract: Contract, rule: MemoryRule): Promise<EnclaveModule> {
  const mod = await compileEnclave(bytes, { cacheDir: false });
  const maximum = memoryMaximum(bytes, mod);
  if (maximum === undefined || (rule === 'exact' ? maximum !== contract.limits.memoryPages : maximum > contract.limits.memoryPages)) {
    const says = rule === 'exact' ? `its contract says ${contract.limits.memoryPages}` : `its contract's limits.memoryPages is ${contract.limits.memoryPages}`;
    throw new EnclaveError('memory_limit', `Its memory maximum is ${String(maximum)} pages; ${says}.`);
  }
  // The contract's own limits as the policy (the host's default policy would cap them), and every
  // capability it declares: what a host that accepts the contract as it is would do.
  const enclave = mod.create({ capabilities: contract.capabilities, attestation: NO_PLATFORM, policy: { ...contract.limits } });
  await enclave.close();
  return mod;
}

/** The declared maximum of the module's one memory (a component's: the one its core modules define; the gate allows one). */
function memoryMaximum(bytes: Uint8Array, mod: EnclaveModule): number | undefined {
  if (!isComponent(bytes)) return mod.info.memories[0]?.maximum;
  return readComponentInfo(bytes).coreModuleInfo.flatMap((info) => info.memories)[0]?.maximum;
}

/**
 * Checks a built module against its contract: {@link checkLoads} with the memory maximum equal to
 * `limits.memoryPages`, then every op of the contract has a handler ({@link probeHandlers}).
 * @param where - the module's directory, for messages.
 * @param deadlineMs - how long the probe may take (tests pass less).
 * @throws {EnclaveError} `build_failed` naming what is wrong.
 * @example
 * await checkBuilt(bytes, contract, 'enclave-modules/kv');
 */
export async function checkBuilt(bytes: Uint8Array, contract: Contract, where: string, deadlineMs = LOAD_CHECK_DEADLINE_MS): Promise<void> {
  try {
    await checkLoads(bytes, contract, 'exact');
  } catch (err) {
    const code = err instanceof EnclaveError ? err.code : 'internal';
    // The runtime's trap message is for a caller; an author needs the usual causes at start.
    const hint =
      code === 'trap'
        ? ' Its top-level code trapped: a failed assert or index, or a capability (randomBytes, nowMillis, log, sealKey, report) called at top level, where the host cannot serve it yet (docs/SDK.md).'
        : '';
    throw new EnclaveError('build_failed', `The module built from ${where} does not load (${code}): ${(err as Error).message}${hint}`, { cause: err });
  }
  const probe = await probeHandlers(bytes, contract, deadlineMs);
  const ops = Object.keys(contract.ops);
  const fail = (stage: number, why: string): never => {
    const what = stage < 0 ? 'when it started (its top-level code)' : `probing ${JSON.stringify(ops[stage])}`;
    throw new EnclaveError('build_failed', `The load check of the module built from ${where} failed ${what}: ${why}`);
  };
  const missing: string[] = [];
  probe.answers.forEach((answer, i) => {
    if (answer.kind === 'missing') missing.push(answer.op);
    else if (answer.kind === 'other') fail(i, answer.why);
  });
  if (probe.failed !== undefined) fail(probe.failed.stage, probe.failed.why);
  if (missing.length > 0) {
    const list = missing.map((op) => JSON.stringify(op)).join(', ');
    throw new EnclaveError(
      'build_failed',
      `The module built from ${where} has no handler for ${missing.length === 1 ? 'the contract op' : 'the contract ops'} ${list}: ` +
        `register ${missing.length === 1 ? 'it' : 'each'} with Enclave.op("<name>", handler) at top level, or remove ${missing.length === 1 ? 'it' : 'them'} from contract.json.`,
    );
  }
}

/**
 * The probe's worker, plain JavaScript evaluated from this string (no file to find from the sources,
 * dist/ or an installed package). workerData: the module's bytes, the probe requests and the largest
 * reply it may give. It posts `{stage}` before each step (-1: the start, else the request's index),
 * then `{replies}` (each reply's bytes, copied) or `{failed}` (why the current stage failed).
 */
const PROBE_WORKER = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
class Aborted extends Error {}
let memory;
const text = (ptr, len) => {
  if (memory === undefined) return '';
  const view = new Uint8Array(memory.buffer);
  return new TextDecoder().decode(view.subarray(ptr, Math.min(ptr + Math.min(len, 256), view.length)));
};
// The imports of docs/ABI.md §3 (compileEnclave checked their names and types): harmless answers.
const stubs = {
  abort: (ptr, len) => { throw new Aborted(text(ptr, len)); },
  random: (ptr, len) => { if (memory !== undefined) new Uint8Array(memory.buffer, ptr, len).fill(0); return 0; },
  now: () => 0n,
  log: () => undefined,
  seal_key: () => -3,
  seal_key_at: () => -3,
  counter_read: () => -3,
  counter_advance: () => -3,
  report: () => -3,
};
const why = (err) => (err instanceof Aborted ? 'it aborted: ' + err.message : err instanceof Error ? err.message : 'no reply');
(async () => {
  let exports;
  try {
    parentPort.postMessage({ stage: -1 });
    const module = await WebAssembly.compile(workerData.bytes);
    const imports = { enclave: {} };
    for (const imp of WebAssembly.Module.imports(module)) imports.enclave[imp.name] = stubs[imp.name];
    exports = (await WebAssembly.instantiate(module, imports)).exports;
    memory = exports.memory;
  } catch (err) {
    parentPort.postMessage({ failed: why(err) });
    return;
  }
  const replies = [];
  for (let i = 0; i < workerData.requests.length; i++) {
    const request = workerData.requests[i];
    parentPort.postMessage({ stage: i });
    try {
      const ptr = exports.enclave_alloc(request.length);
      if (ptr === 0) throw new Error('no request buffer (enclave_alloc returned 0)');
      new Uint8Array(memory.buffer).set(request, ptr);
      const desc = exports.enclave_call(ptr, request.length);
      if (desc === 0) throw new Error('no reply (enclave_call returned 0)');
      const view = new DataView(memory.buffer);
      const at = view.getUint32(desc, true);
      const len = view.getUint32(desc + 4, true);
      if (len > workerData.replyBytes || at + len > memory.buffer.byteLength) {
        throw new Error('a reply of ' + len + ' bytes at ' + at + ', outside its memory or over limits.replyBytes');
      }
      const bytes = new Uint8Array(memory.buffer);
      // A probe's answer is a few bytes: a longer reply is not kept (one per op, up to limits.replyBytes each).
      replies.push(len > workerData.keep ? { bytes: len, ok: len >= 4 && bytes[at] === 0x81 && bytes[at + 1] === 0xa2 && bytes[at + 2] === 0x6f && bytes[at + 3] === 0x6b } : bytes.slice(at, at + len));
    } catch (err) {
      parentPort.postMessage({ failed: why(err) });
      return;
    }
  }
  parentPort.postMessage({ replies });
})();
`;

/**
 * The probe of a component, through the runtime itself (a component has no `enclave_call` to enter
 * with the plain WebAssembly API): the runtime's entry is imported in the worker, the component
 * compiled and created as {@link checkLoads} does (a platform without keys), and each probe request
 * sent by the path the runtime's worker mode uses (`Enclave[CALL_RAW]`: request bytes in, checked
 * reply bytes out), so each call runs under the contract's fuel and the runtime's bounds. An op
 * with `requires` is probed after them, each earlier probe answered `ok` counted as a success
 * (CALL_RAW's `settle`). workerData: the bytes, the runtime's URL, the capabilities and limits, the
 * requests and the order to send them in. It posts `{stage}` before each step, then `{replies}` in
 * contract order (bytes, or `{code, message}` when the runtime refused or stopped the call), or
 * `{failed}`.
 */
const COMPONENT_PROBE_WORKER = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const none = () => { throw new Error('No platform while embedding.'); };
const platform = { platform: 'enclave-build', getSealingSecret: none, getEvidence: none, readCounter: none, advanceCounter: none };
const why = (err) => (err instanceof Error ? (err.code ? '(' + err.code + ') ' : '') + err.message : 'no reply');
(async () => {
  let enclave;
  let CALL_RAW;
  try {
    parentPort.postMessage({ stage: -1 });
    const runtime = await import(workerData.runtime);
    CALL_RAW = runtime.CALL_RAW;
    const mod = await runtime.compileEnclave(workerData.bytes, { cacheDir: false });
    enclave = mod.create({ capabilities: workerData.capabilities, attestation: platform, policy: workerData.limits });
  } catch (err) {
    parentPort.postMessage({ failed: why(err) });
    return;
  }
  const replies = [];
  let settle = 0;
  for (const i of workerData.order) {
    const request = Buffer.from(workerData.requests[i]);
    parentPort.postMessage({ stage: i });
    try {
      const reply = enclave[CALL_RAW](workerData.ops[i], { buffer: request, start: 0, end: request.length }, settle);
      // {ok: ...} as the runtime writes it for a component: fixmap of 1, fixstr "ok".
      const ok = reply[0] === 0x81 && reply[1] === 0xa2 && reply[2] === 0x6f && reply[3] === 0x6b;
      settle = ok ? 1 : 0;
      // A probe's answer is a few bytes: a longer reply is not kept (one per op, up to limits.replyBytes each).
      replies[i] = reply.length > workerData.keep ? { bytes: reply.length, ok } : reply.slice();
    } catch (err) {
      settle = 0;
      replies[i] = { code: typeof err?.code === 'string' ? err.code : 'internal', message: String(err?.message).slice(0, 256) };
    }
  }
  parentPort.postMessage({ replies });
})();
`;

/** The runtime's entry for the component probe's worker: next to us in dist/; from the TypeScript sources (vitest), dist/'s copy. */
function runtimeEntry(): string {
  const here = import.meta.url;
  return (here.endsWith('.ts') ? new URL('../../dist/runtime/index.js', here) : new URL('../../runtime/index.js', here)).href;
}

/** The contract's ops in an order where each op's `requires` come before it (contract order otherwise; ops in a cycle last). */
function requiresFirst(contract: Contract): number[] {
  const ops = Object.keys(contract.ops);
  const order: number[] = [];
  const placed = new Set<string>();
  for (let progress = true; progress; ) {
    progress = false;
    ops.forEach((op, i) => {
      if (!placed.has(op) && contract.ops[op]!.requires.every((r) => placed.has(r))) {
        placed.add(op);
        order.push(i);
        progress = true;
      }
    });
  }
  ops.forEach((op, i) => placed.has(op) || order.push(i));
  return order;
}

/**
 * The most bytes of a probe's reply the worker keeps: the probe's answers (`{ok: nil}`, an
 * `unknown_op` error with its message of at most 256 bytes) are far shorter. A longer reply, which
 * is not the probe's answer, is reported by its size and whether it is `{ok: ...}`: a worker kept
 * every reply whole, up to limits.replyBytes (64 MiB) for each of the contract's ops, gigabytes.
 */
export const PROBE_REPLY_KEEP = 4096;

/**
 * A reply of the probe: its bytes; a reply over {@link PROBE_REPLY_KEEP} bytes, its size and whether
 * it is `{ok: ...}`; or the runtime's refusal of the call (the component probe only).
 */
type ProbeReply = Uint8Array | { readonly bytes: number; readonly ok: boolean } | { readonly code: string; readonly message: string };

type ProbeMessage = { readonly stage: number } | { readonly replies: readonly ProbeReply[] } | { readonly failed: string };

/** What the probe came to: each request's reply, or where (`stage`, as the worker posts it) and why it failed. */
type ProbeOutcome = { readonly replies: readonly ProbeReply[] } | { readonly stage: number; readonly why: string };

/** Runs a probe worker (`source`); one that has not answered within `deadlineMs` is stopped. */
function runProbes(source: string, workerData: unknown, deadlineMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let stage = -1;
    let settled = false;
    let worker: Worker;
    try {
      worker = new Worker(source, { eval: true, workerData });
    } catch (err) {
      // No worker threads here (Node's permission model without --allow-worker, say).
      resolve({ stage, why: `its check could not start a worker thread: ${(err as Error).message}` });
      return;
    }
    const settle = (outcome: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      const seconds = deadlineMs / 1000;
      settle({ stage, why: `it did not finish in time (${seconds} s): a loop that never ends? (the runtime stops one at the contract's fuel, fuel_exhausted)` });
    }, deadlineMs);
    worker.on('message', (m: ProbeMessage) => {
      if ('stage' in m) stage = m.stage;
      else if ('replies' in m) settle({ replies: m.replies });
      else settle({ stage, why: m.failed });
    });
    worker.once('error', (err) => settle({ stage, why: err.message }));
    worker.once('exit', (code) => settle({ stage, why: `the check's worker stopped (exit code ${code})` }));
  });
}

/** What one op's probe answered. */
export type ProbeAnswer =
  /** `{ok: ...}`: the op has a handler (the SDK answers `{ok: nil}` without running it). */
  | { readonly op: string; readonly kind: 'handler' }
  /** `unknown_op`: the module has no handler for the op, whether it speaks the probe or not. */
  | { readonly op: string; readonly kind: 'missing' }
  /** Any other reply: not the probe's answer (a module that ignores `probe` may have run its handler). */
  | { readonly op: string; readonly kind: 'other'; readonly why: string };

/** What {@link probeHandlers} found. */
export interface ProbeResult {
  /** The ops probed, in contract order, each with its answer: all of them unless {@link failed}. */
  readonly answers: readonly ProbeAnswer[];
  /** Where (-1: when it started; else the index of the op in contract order) and why the probe stopped. */
  readonly failed?: { readonly stage: number; readonly why: string };
}

/**
 * Sends the handler probe (docs/ABI.md §4.1, `{op, probe: true}`) for every op of the contract, in
 * a worker stopped after `deadlineMs`, and says what each answered. A core module is run with the
 * plain WebAssembly API and harmless imports, unmetered; a component through the runtime, under
 * its contract's fuel (COMPONENT_PROBE_WORKER).
 * @example
 * const { answers } = await probeHandlers(bytes, contract);
 */
export async function probeHandlers(bytes: Uint8Array, contract: Contract, deadlineMs = LOAD_CHECK_DEADLINE_MS): Promise<ProbeResult> {
  const ops = Object.keys(contract.ops);
  const requests = ops.map((op) => packr.pack({ op, probe: true }) as Uint8Array);
  const outcome = isComponent(bytes)
    ? await runProbes(
        COMPONENT_PROBE_WORKER,
        { bytes, runtime: runtimeEntry(), capabilities: contract.capabilities, limits: { ...contract.limits }, ops, requests, order: requiresFirst(contract), keep: PROBE_REPLY_KEEP },
        deadlineMs,
      )
    : await runProbes(PROBE_WORKER, { bytes, requests, replyBytes: contract.limits.replyBytes, keep: PROBE_REPLY_KEEP }, deadlineMs);
  if (!('replies' in outcome)) {
    // The ops before the failed stage answered; their replies are not kept by the worker.
    return { answers: [], failed: { stage: outcome.stage, why: outcome.why } };
  }
  return { answers: ops.map((op, i) => classify(op, outcome.replies[i]!)) };
}

/** What a probe reply says about its op. */
function classify(op: string, answer: ProbeReply): ProbeAnswer {
  if (!(answer instanceof Uint8Array)) {
    if ('bytes' in answer) return answer.ok ? { op, kind: 'handler' } : { op, kind: 'other', why: `it answered ${answer.bytes} bytes, not the probe's answer` };
    return { op, kind: 'other', why: `the runtime refused or stopped the call (${answer.code}): ${answer.message}` };
  }
  let reply: unknown;
  try {
    reply = unpackr.unpack(answer);
  } catch (err) {
    return { op, kind: 'other', why: `its reply is not MessagePack: ${(err as Error).message}` };
  }
  const code = (reply as { err?: { code?: ErrorCode } } | null)?.err?.code;
  if (code === 'unknown_op') return { op, kind: 'missing' };
  if (typeof reply === 'object' && reply !== null && 'ok' in reply) return { op, kind: 'handler' };
  // inspect, not JSON.stringify: a reply may hold a BigInt (a 64-bit integer), which JSON refuses.
  return { op, kind: 'other', why: `it answered ${inspect(reply, { depth: 3, breakLength: Infinity, maxArrayLength: 20, maxStringLength: 200 }).slice(0, 200)}` };
}
