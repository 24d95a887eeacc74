/**
 * `enclave inspect <module.wasm>`: measurement, exports, imports and contract. Everything the module
 * chose (names, contract fields) is escaped before it is printed (../_escape.ts).
 */
import { Command } from 'commander';
import { readPublicKeyFile, readSignatures, verifyModule } from '../../../attest/index.js';
import { formatFuncType } from '../../../core/index.js';
import { EnclaveModule, readModuleBytes } from '../../../runtime/index.js';
import { escapeText, stringifyForTerminal } from '../_escape.js';
import { handleError } from '../handle-error.js';

export const inspectCommand = new Command('inspect')
  .description('print the measurement, exports, imports and contract of a module')
  .argument('<module>', 'path to the .wasm module')
  .option('--key <file...>', 'public key file(s) to verify signatures with; verified signers are listed')
  .option('--json', 'print as JSON')
  .action(async (module: string, opts) => {
    try {
      const bytes = await readModuleBytes(module);
      const mod = await EnclaveModule.compile(bytes);
      const memory = mod.info.memories[0]!;
      const keys = await Promise.all(((opts.key ?? []) as string[]).map((file) => readPublicKeyFile(file)));
      const signers = keys.length > 0 ? verifyModule(bytes, keys).map((s) => s.signer) : [];
      const declared = readSignatures(bytes).length;
      const report = {
        module,
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
        contract: mod.contract,
      };
      if (opts.json) {
        process.stdout.write(`${stringifyForTerminal(report, 2)}\n`);
        return;
      }
      const lines = [
        `module       ${module} (${bytes.length} bytes)`,
        `measurement  sha256:${report.measurement}`,
        `signer       ${signers.length > 0 ? signers.join(', ') : declared > 0 ? `${declared} signature(s), not verified: pass --key` : '(unsigned)'}`,
        `svn          ${report.svn}`,
        `contract     ${escapeText(report.name)} ${escapeText(report.version)}`,
        `capabilities ${escapeText(mod.contract.capabilities.join(', ')) || '(none)'}`,
        `memory       ${memory.initial} pages initial, ${memory.maximum} maximum`,
        `limits       ${Object.entries(mod.contract.limits).map(([k, v]) => `${k}=${v}`).join(' ')}`,
        'exports',
        ...report.exports.map((e) => `  ${escapeText(e.name).padEnd(24)} ${e.kind}${e.type ? ` ${e.type}` : ''}`),
        'imports',
        ...(report.imports.length === 0 ? ['  (none)'] : report.imports.map((i) => `  ${escapeText(i.module)}.${escapeText(i.name).padEnd(16)} ${i.kind}${i.type ? ` ${i.type}` : ''}`)),
        'ops',
        ...Object.entries(mod.contract.ops).map(
          ([name, op]) =>
            `  ${escapeText(name).padEnd(24)} args ${stringifyForTerminal(op.args)}${op.requires.length ? ` requires ${escapeText(op.requires.join(', '))}` : ''}${op.idempotent ? ' idempotent' : ''}`,
        ),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
