/**
 * What a compiled module is made of, the part that crosses to a worker: declared apart
 * from runtime/module.ts so that the component compile path (runtime/_component-module.ts), which
 * module.ts loads, can name it without an import cycle.
 */
import type { ModuleIdentity } from '../attest/index.js';
import type { ModuleInfo } from '../core/index.js';
import type { Contract } from './contract.js';
import type { FuelManifest } from './fuel.js';
import type { ComponentParts } from './_component-live.js';

/** The parts of a compiled module that cross to a worker (internal: this file is not on the package's surface). */
export interface ModuleParts {
  readonly module: WebAssembly.Module;
  readonly info: ModuleInfo;
  readonly contract: Contract;
  readonly identity: ModuleIdentity;
  readonly fuel: FuelManifest;
  /** The original (uninstrumented) bytes, compiled only for `metering: false`. */
  readonly original: Uint8Array;
  /**
   * A component's glue and core modules (runtime/_component-module.ts); then `module` and `info`
   * are its main core module's. Rebuilt in a worker by `loadComponentParts` (runtime/module.ts) first.
   */
  readonly component?: ComponentParts;
}
