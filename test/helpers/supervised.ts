/**
 * The host supervisor's test enclave (test/fixtures/supervised/index.ts), built the way `enclave
 * build` builds a module (host/build-modules.ts): compiled with the contract's limits as the SDK's
 * constants, the contract embedded as the `enclave.contract` section, then the build's load check.
 * Cached in test/build/ by a hash of the sources and the options, so test files don't each
 * recompile (test/helpers/fixture-build.ts).
 *
 * Ops (any args unless said):
 *   health → true                        idempotent
 *   echo   any → the same                idempotent; the `failing` variant answers err `internal`
 *   work   {n: int 0..300_000} → int    idempotent, CPU-bound (n rounds of a xorshift)
 *   crash  → traps (the instance is discarded)
 *   spin   → never returns: fuel_exhausted (metered), or the worker's deadline (`metering: false`)
 *   open   → true;  use → true, requires ["open"] in the session
 *   fail   → err `internal`
 *   count  → how many calls of `count` this instance served (1, 2, ...): which instance answered
 */
import { buildFixture } from './fixture-build.js';
import { afterEach } from 'vitest';
import { EnclaveHost, type HostOptions } from '../../host/index.js';

/** Options of {@link supervisedModule}. */
export interface SupervisedOptions {
  /** The contract's `version` (default '1.0.0'); another version is another measurement. */
  version?: string;
  /** The contract's `svn` (default 1). */
  svn?: number;
  /** `echo` answers err `internal` (default false): the failing canary. */
  failing?: boolean;
  /**
   * The contract's `limits.fuel` (default 20_000_000: `spin` ends with fuel_exhausted in well under
   * a second; the host's default policy caps it at 10M anyway). To have `spin` end by a worker's deadline, start
   * the worker with `metering: false`.
   */
  fuel?: number;
}

/** The fixture's entry, relative to the repository root. */
export const SUPERVISED_ENTRY = 'test/fixtures/supervised/index.ts';

/** The largest `n` of `work` the contract allows: about 30 fuel a round, so within the default policy's 10M fuel. */
export const MAX_WORK = 300_000;

/** The fixture's contract for these options (the object embedded, before re-serialising). */
export function supervisedContract(opts: SupervisedOptions = {}): Record<string, unknown> {
  return {
    abi: 1,
    name: 'supervised',
    version: opts.version ?? '1.0.0',
    svn: opts.svn ?? 1,
    capabilities: [],
    limits: { requestBytes: 16384, replyBytes: 16384, depth: 16, memoryPages: 4, fuel: opts.fuel ?? 20_000_000 },
    ops: {
      health: { args: { type: 'nil' }, reply: { type: 'bool' }, idempotent: true },
      echo: { idempotent: true },
      work: {
        args: { type: 'map', fields: { n: { type: 'int', min: 0, max: MAX_WORK } } },
        reply: { type: 'int' },
        idempotent: true,
      },
      crash: {},
      spin: {},
      open: { reply: { type: 'bool' } },
      use: { reply: { type: 'bool' }, requires: ['open'] },
      fail: {},
      count: { reply: { type: 'int' } },
    },
  };
}

/**
 * The fixture module's bytes for these options.
 * @throws {EnclaveError} `build_failed` if the fixture does not compile or fails the load check.
 * @example
 * const v1 = await supervisedModule();
 * const canary = await supervisedModule({ version: '1.1.0', svn: 2, failing: true });
 */
export async function supervisedModule(opts: SupervisedOptions = {}): Promise<Uint8Array> {
  const args = opts.failing === true ? ['--use', 'SUPERVISED_FAILING=1'] : [];
  return buildFixture({ entry: SUPERVISED_ENTRY, contract: supervisedContract(opts), args, cacheName: 'supervised' });
}

/**
 * The hosts a test file makes, each closed after the test that made it, whatever happened (this
 * registers vitest's `afterEach`). `newHost` makes one with the file's options (and `more`); a host
 * made another way is closed too once pushed on `hosts`.
 * @example
 * const { newHost, hosts } = supervisedHosts({ access: ACCESS, integrityIntervalMs: 0 });
 * const host = newHost();
 */
export function supervisedHosts(options: HostOptions): { newHost: (more?: Partial<HostOptions>) => EnclaveHost; hosts: EnclaveHost[] } {
  const hosts: EnclaveHost[] = [];
  afterEach(async () => {
    await Promise.all(hosts.splice(0).map((h) => h.close()));
  });
  const newHost = (more: Partial<HostOptions> = {}): EnclaveHost => {
    const host = new EnclaveHost({ ...options, ...more });
    hosts.push(host);
    return host;
  };
  return { newHost, hosts };
}
