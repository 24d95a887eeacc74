/**
 * Integrity over time (issue 12, §7): the bytes an enclave runs from are measured again and
 * compared with the measurement attested at start. The host runs it on a schedule and takes an
 * enclave out of service on a mismatch (host.ts).
 *
 * Two places are checked. `memory`: the module's own copy of its bytes, kept since compile
 * (`EnclaveModule.remeasure`; what that does not cover, the compiled code V8 runs, is said there).
 * `file`: the module file it was started from, re-read (bounded) and measured, so a file replaced
 * on disk under a running service is noticed before a restart would load it. A measurement leaves
 * the signature section out, so re-signing a file is no mismatch; any other change is.
 */
import { measure } from '../../attest/index.js';
import { MODULE_BOUNDS, readBoundedFile } from '../../core/index.js';
import { EnclaveError, type EnclaveModule } from '../../runtime/index.js';

/** Where a mismatch was found: the module's copy of its bytes, or its file. */
export type IntegrityWhere = 'memory' | 'file';

/**
 * The verdict of {@link checkIntegrity}. A mismatch says where, and the measurement found there:
 * '' when none could be computed, with the reason (a file gone or unreadable, bytes that no longer
 * parse as a module).
 */
export type IntegrityResult = { readonly ok: true } | { readonly ok: false; readonly where: IntegrityWhere; readonly found: string; readonly reason?: string };

const MEASUREMENT = /^[0-9a-f]{64}$/;

/** The reason text of a failed read: the kind and the system's code, never the path. */
function unreadable(read: Exclude<Awaited<ReturnType<typeof readBoundedFile>>, { kind: 'ok' }>): string {
  switch (read.kind) {
    case 'not_regular':
      return 'The module file is no longer a regular file.';
    case 'too_large':
      return `The module file is larger than the ${MODULE_BOUNDS.moduleBytes} bytes a module may have.`;
    default:
      return `The module file could not be read (${read.code}).`;
  }
}

/**
 * Measures the module's copy of its bytes and, with `file`, the file again, and compares each with
 * `attested`; memory first (a file is not read when memory already differs). Never throws for
 * what it finds: an unreadable file, or bytes that no longer parse, are mismatches with `found: ''`
 * and a reason.
 * @param mod - the compiled module the enclave's instances run.
 * @param attested - the measurement the enclave attested (64 lowercase hex digits).
 * @param file - the module file the enclave was started from, if it was started from a file.
 * @throws {EnclaveError} `invalid_options` (rejected) when `attested` is not a measurement or `file`
 *   is given and not a non-empty string: the caller's mistake, not a finding.
 * @example
 * const verdict = await checkIntegrity(mod, mod.measurement, 'signer.wasm');
 * if (!verdict.ok) host.emit('integrity', { enclave, expected: mod.measurement, found: verdict.found, where: verdict.where });
 */
export async function checkIntegrity(mod: EnclaveModule, attested: string, file?: string): Promise<IntegrityResult> {
  if (typeof attested !== 'string' || !MEASUREMENT.test(attested)) {
    throw new EnclaveError('invalid_options', 'The attested measurement must be 64 lowercase hex digits.');
  }
  if (file !== undefined && (typeof file !== 'string' || file.length === 0)) {
    throw new EnclaveError('invalid_options', 'The module file must be a non-empty path.');
  }
  let inMemory: string;
  try {
    inMemory = await mod.remeasure();
  } catch (err) {
    // Fail closed: bytes that cannot be measured are not the bytes attested.
    const reason = err instanceof EnclaveError ? err.message : 'The module bytes in memory could not be measured.';
    return { ok: false, where: 'memory', found: '', reason };
  }
  if (inMemory !== attested) return { ok: false, where: 'memory', found: inMemory };
  if (file === undefined) return { ok: true };

  const read = await readBoundedFile(file, MODULE_BOUNDS.moduleBytes);
  if (read.kind !== 'ok') return { ok: false, where: 'file', found: '', reason: unreadable(read) };
  let onDisk: string;
  try {
    onDisk = Buffer.from(measure(read.bytes)).toString('hex');
  } catch {
    return { ok: false, where: 'file', found: '', reason: 'The module file no longer parses as a WebAssembly module.' };
  }
  return onDisk === attested ? { ok: true } : { ok: false, where: 'file', found: onDisk };
}
