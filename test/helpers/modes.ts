/**
 * The two isolation modes as a table, for suites that run the same behaviour tests against both
 * (`describe.each(MODES)`): test/modes*.test.ts, test/diagnostics.test.ts. Only the public API.
 */
import { loadEnclave, type EnclaveHandle, type LoadOptions, type ModuleSource } from '../../host/index.js';

export interface Mode {
  readonly name: 'in-process' | 'worker';
  /** What `loadEnclave` needs for this mode. The worker's deadline is generous: a loaded 2-core machine must not turn a slow call into `timeout`. */
  readonly options: Readonly<Record<string, unknown>>;
}

export const MODES: readonly Mode[] = [
  { name: 'in-process', options: {} },
  { name: 'worker', options: { isolation: 'worker', deadlineMs: 10_000 } },
];

/** Loads `source` in `mode` with `extra` options (which win over the mode's, e.g. a shorter `deadlineMs`); the handle is the one interface both modes implement. */
export function loadIn(mode: Mode, source: ModuleSource, extra: Record<string, unknown> = {}): Promise<EnclaveHandle> {
  return loadEnclave(source, { ...mode.options, ...extra } as LoadOptions);
}
