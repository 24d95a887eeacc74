/**
 * `enclave inspect <module.wasm>`: measurement, exports, imports and contract of a module; of a
 * component (wit/enclave.wit), also its WIT world, its core modules and the bound on a call's fuel
 * across them. Everything the module chose (names, contract fields, WIT) is escaped before it is
 * printed (../_escape.ts). A module or component the runtime refuses (an import beyond the enclave
 * world, say) is refused here with the runtime's code: inspect shows what would load.
 */
import { Command } from 'commander';
import { readPublicKeyFile, readSignatures, verifyModule } from '../../../attest/index.js';
import { formatFuncType, isComponent, readComponentInfo } from '../../../core/index.js';
import { EnclaveModule, INTERFACE_CAPABILITY, readModuleBytes, WORLD_PACKAGE, WORLD_VERSION, type Contract } from '../../../runtime/index.js';
import { escapeText, stringifyForTerminal } from '../_escape.js';
import { handleError } from '../handle-error.js';

/** What every report has, module or component. */
interface Identity {
  readonly module: string;
  readonly bytes: number;
  readonly measurement: string;
  readonly signer: string | null;
  readonly signers: string[];
  readonly signatures: number;
}

/** The capability a world import needs (`null`: none, the shared `types`); the runtime admitted only world imports. */
function capabilityOf(name: string): string | null {
  const prefix = `${WORLD_PACKAGE}/`;
  const suffix = `@${WORLD_VERSION}`;
  const iface = name.startsWith(prefix) && name.endsWith(suffix) ? name.slice(prefix.length, name.length - suffix.length) : '';
  return Object.hasOwn(INTERFACE_CAPABILITY, iface) ? INTERFACE_CAPABILITY[iface]! : null;
}

/** The lines every report shares after its identity: contract, capabilities. */
function signerLine(id: Identity): string {
  return `signer       ${id.signers.length > 0 ? id.signers.join(', ') : id.signatures > 0 ? `${id.signatures} signature(s), not verified: pass --key` : '(unsigned)'}`;
}

function opLines(contract: Contract): string[] {
  return Object.entries(contract.ops).map(
    ([name, op]) =>
      `  ${escapeText(name).padEnd(24)} args ${stringifyForTerminal(op.args)}${op.requires.length ? ` requires ${escapeText(op.requires.join(', '))}` : ''}${op.idempotent ? ' idempotent' : ''}`,
  );
}

function limitsLine(contract: Contract): string {
  return `limits       ${Object.entries(contract.limits).map(([k, v]) => `${k}=${v}`).join(' ')}`;
}

/** A component's report: what the gate read, the WIT world (bounded), and the fuel bound of decision 6. */
async function inspectComponent(id: Identity, bytes: Uint8Array, contract: Contract, json: boolean): Promise<string> {
  // Loaded here: only a component needs it (and it starts a worker).
  const { componentWitBounded } = await import('../_component-wit.js');
  const info = readComponentInfo(bytes);
  const pages = (m: { initial: number; maximum: number | undefined }) => ({ initialPages: m.initial, maximumPages: m.maximum ?? null });
  const memory = info.coreModuleInfo.flatMap((m) => m.memories)[0];
  const printed = await componentWitBounded(bytes);
  const count = info.coreModules.length;
  const report = {
    module: id.module,
    kind: 'component' as const,
    bytes: id.bytes,
    measurement: id.measurement,
    signer: id.signer,
    signers: id.signers,
    signatures: id.signatures,
    name: contract.name,
    version: contract.version,
    svn: contract.svn,
    memory: memory === undefined ? null : pages(memory),
    coreModules: info.coreModules.map((m, i) => {
      const own = info.coreModuleInfo[i]!.memories[0];
      return { index: i, bytes: m.length, memory: own === undefined ? null : pages(own) };
    }),
    // Every core module has its own fuel counter, each set to the call's budget (docs/LIMITS.md).
    fuel: { coreModules: count, budget: contract.limits.fuel, callBound: count * contract.limits.fuel },
    imports: info.imports.map((i) => ({ name: i.name, kind: i.kind, capability: capabilityOf(i.name) })),
    exports: info.exports.map((e) => ({ name: e.name, kind: e.kind })),
    customSections: info.customSections.map((c) => c.name),
    wit: printed.wit,
    ...(printed.wit === null ? { witError: printed.why } : printed.truncated ? { witTruncated: true } : {}),
    contract,
  };
  if (json) return stringifyForTerminal(report, 2);
  const wit = printed.wit === null ? [`  (not shown: ${escapeText(printed.why)})`] : printed.wit.trimEnd().split('\n').map((l) => (l === '' ? '' : `  ${escapeText(l)}`));
  if (printed.wit !== null && printed.truncated) wit.push(`  ... (cut at ${printed.wit.length} characters)`);
  const lines = [
    `module       ${id.module} (${id.bytes} bytes)`,
    `kind         component (${count} core module${count === 1 ? '' : 's'})`,
    `measurement  sha256:${id.measurement}`,
    signerLine(id),
    `svn          ${contract.svn}`,
    `contract     ${escapeText(contract.name)} ${escapeText(contract.version)}`,
    `capabilities ${escapeText(contract.capabilities.join(', ')) || '(none)'}`,
    `memory       ${memory === undefined ? '(none)' : `${memory.initial} pages initial, ${memory.maximum} maximum`}`,
    limitsLine(contract),
    `fuel         a call may run up to ${count} × its fuel budget (${count} × ${contract.limits.fuel} = ${report.fuel.callBound} at limits.fuel) across its ${count} core module${count === 1 ? '' : 's'}: each is metered on its own counter`,
    'core modules',
    ...report.coreModules.map((m) => `  #${m.index}  ${`${m.bytes} bytes`.padEnd(14)} ${m.memory === null ? 'no memory' : `memory ${m.memory.initialPages} pages initial, ${m.memory.maximumPages} maximum`}`),
    'imports',
    ...(report.imports.length === 0
      ? ['  (none)']
      : report.imports.map((i) => `  ${escapeText(i.name).padEnd(32)} ${i.kind}, ${i.capability === null ? 'no capability' : `capability ${i.capability}`}`)),
    'exports',
    ...report.exports.map((e) => `  ${escapeText(e.name).padEnd(32)} ${e.kind}`),
    'ops',
    ...opLines(contract),
    'wit',
    ...wit,
  ];
  return lines.join('\n');
}

export const inspectCommand = new Command('inspect')
  .description(
    'print the measurement, exports, imports and contract of a module; of a component, also its WIT world, ' +
      'its core modules and the fuel bound of a call. A module the runtime refuses is refused here, with its code',
  )
  .argument('<module>', 'path to the .wasm module or component')
  .option('--key <file...>', 'public key file(s) to verify signatures with; verified signers are listed')
  .option('--json', 'print as JSON')
  .action(async (module: string, opts) => {
    try {
      const bytes = await readModuleBytes(module);
      // For a component, the gate and the world check: an import beyond the world is refused here.
      const mod = await EnclaveModule.compile(bytes);
      const keys = await Promise.all(((opts.key ?? []) as string[]).map((file) => readPublicKeyFile(file)));
      const signers = keys.length > 0 ? verifyModule(bytes, keys).map((s) => s.signer) : [];
      const declared = readSignatures(bytes).length;
      const id: Identity = { module, bytes: bytes.length, measurement: mod.measurement, signer: signers[0] ?? null, signers, signatures: declared };
      if (isComponent(bytes)) {
        process.stdout.write(`${await inspectComponent(id, bytes, mod.contract, opts.json === true)}\n`);
        return;
      }
      const memory = mod.info.memories[0]!;
      const report = {
        module,
        kind: 'module' as const,
        bytes: bytes.length,
        measurement: mod.measurement,
        signer: signers[0] ?? null,
        signers,
        signatures: declared,
        name: mod.contract.name,
        version: mod.contract.version,
        svn: mod.contract.svn,
        memory: { initialPages: memory.initial, maximumPages: memory.maximum },
        exports: mod.info.exports.map((e) => ({ name: e.name, kind: e.kind, type: e.type && formatFuncType(e.type) })),
        imports: mod.info.imports.map((i) => ({ module: i.module, name: i.name, kind: i.kind, type: i.type && formatFuncType(i.type) })),
        customSections: mod.info.customSections,
        wit: null,
        contract: mod.contract,
      };
      if (opts.json) {
        process.stdout.write(`${stringifyForTerminal(report, 2)}\n`);
        return;
      }
      const lines = [
        `module       ${module} (${bytes.length} bytes)`,
        `measurement  sha256:${report.measurement}`,
        signerLine(id),
        `svn          ${report.svn}`,
        `contract     ${escapeText(report.name)} ${escapeText(report.version)}`,
        `capabilities ${escapeText(mod.contract.capabilities.join(', ')) || '(none)'}`,
        `memory       ${memory.initial} pages initial, ${memory.maximum} maximum`,
        limitsLine(mod.contract),
        'exports',
        ...report.exports.map((e) => `  ${escapeText(e.name).padEnd(24)} ${e.kind}${e.type ? ` ${e.type}` : ''}`),
        'imports',
        ...(report.imports.length === 0 ? ['  (none)'] : report.imports.map((i) => `  ${escapeText(i.module)}.${escapeText(i.name).padEnd(16)} ${i.kind}${i.type ? ` ${i.type}` : ''}`)),
        'ops',
        ...opLines(mod.contract),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
