/**
 * One build of a test fixture enclave (test/fixtures/<name>/index.ts) the way `enclave build` builds
 * a module (host/build-modules.ts): compiled with the contract's limits as the SDK's constants, the
 * contract embedded as the `enclave.contract` section, then the build's load check. Cached in
 * test/build/ by a hash of everything the bytes depend on, so test files don't each recompile
 * (compileModule in raw-abi.ts does the same for enclave-modules/).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CONTRACT_SECTION, encodeCustomSection } from '../../core/index.js';
import { parseContract } from '../../runtime/index.js';
import { checkBuilt } from '../../host/build/check.js';
import { ABORT_ALIAS, limitArgs } from '../../host/build/settings.js';
import { compileEntry, ROOT } from './raw-abi.js';

/** What {@link buildFixture} builds. */
export interface FixtureBuild {
  /** The AssemblyScript entry, relative to the repository root (e.g. 'test/fixtures/sealer/index.ts'). */
  entry: string;
  /** The contract as an object: embedded as its JSON, and its limits become asc arguments. */
  contract: Record<string, unknown>;
  /** More asc arguments after the contract's limits (e.g. `['--use', 'SEALER_VARIANT=1']`); default none. */
  args?: string[];
  /** The cache file's prefix: test/build/<cacheName>-<hash>.wasm. */
  cacheName: string;
}

/**
 * The fixture's module bytes: the cached build if there is one, else compiled, the contract section
 * appended, load-checked and written to the cache atomically. The cache key hashes the entry, every
 * SDK and build source (enclave-modules/sdk, sdk, host/build), the asc arguments and the contract's
 * JSON, so a change to any of them builds afresh.
 * @throws {EnclaveError} `build_failed` if the entry does not compile or fails the load check;
 *   `invalid_contract` if `contract` does not parse.
 * @example
 * const bytes = await buildFixture({ entry: 'test/fixtures/sealer/index.ts', contract: sealerContract(), cacheName: 'sealer' });
 */
export async function buildFixture(build: FixtureBuild): Promise<Uint8Array> {
  const contract = parseContract(build.contract);
  const payload = new TextEncoder().encode(JSON.stringify(build.contract));
  // What `enclave build` gives asc: the contract's limits (memory maximum, the SDK's constants); the
  // abort alias is compileEntry's.
  const args = [...withoutAbortAlias(limitArgs(contract.limits)), ...(build.args ?? [])];

  const hash = createHash('sha256');
  for (const file of [build.entry, ...sdkSources()]) hash.update(file).update('\0').update(readFileSync(ROOT + file)).update('\0');
  hash.update(JSON.stringify(args)).update('\0').update(payload);
  const cached = `${ROOT}test/build/${build.cacheName}-${hash.digest('hex').slice(0, 16)}.wasm`;
  try {
    return new Uint8Array(readFileSync(cached));
  } catch {
    // not built yet
  }
  const bytes = withContractSection(await compileEntry(build.entry, args), payload);
  await checkBuilt(bytes, contract, dirname(build.entry));
  mkdirSync(`${ROOT}test/build`, { recursive: true });
  const tmp = `${cached}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, cached); // atomic: parallel test files never read half a file
  return bytes;
}

/**
 * `compiled` with the `enclave.contract` custom section holding `payload` (the contract's JSON)
 * appended, as `enclave build` embeds it.
 * @example
 * const bytes = withContractSection(await compileModule('vault'), new TextEncoder().encode(JSON.stringify(raw)));
 */
export function withContractSection(compiled: Uint8Array, payload: Uint8Array): Uint8Array {
  const section = encodeCustomSection(CONTRACT_SECTION, payload);
  const bytes = new Uint8Array(compiled.length + section.length);
  bytes.set(compiled, 0);
  bytes.set(section, compiled.length);
  return bytes;
}

/** The SDK and build sources a fixture build depends on (their change invalidates the cache). */
function sdkSources(): string[] {
  return ['enclave-modules/sdk', 'sdk', 'host/build'].flatMap((dir) => listTs(dir)).sort();
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(ROOT + dir, { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...listTs(rel));
    else if (entry.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** asc arguments without the `--use abort=...` pair (compileEntry adds it; once is enough). */
function withoutAbortAlias(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--use' && args[i + 1] === ABORT_ALIAS) i++;
    else out.push(args[i]!);
  }
  return out;
}
