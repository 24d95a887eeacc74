/**
 * `enclave embed-contract <module.wasm> <contract.json> [--out <file>]`: a module from any toolchain
 * (or a component) made an enclave module, with the checks `enclave build` makes (host/build/embed.ts).
 */
import path from 'node:path';
import { Command } from 'commander';
import { readModuleBytes } from '../../../runtime/index.js';
import { escapeMessage, escapeText, stringifyForTerminal } from '../_escape.js';
import { shownPath } from '../_paths.js';
import { handleError } from '../handle-error.js';

/** `<module>.enclave.wasm` beside the module (`.wasm` replaced, or appended to a name without it). */
export function defaultOutput(module: string): string {
  const dir = path.dirname(module);
  const base = path.basename(module);
  return path.join(dir, `${base.endsWith('.wasm') ? base.slice(0, -'.wasm'.length) : base}.enclave.wasm`);
}

export const embedContractCommand = new Command('embed-contract')
  .description(
    'embed a contract.json into a WebAssembly module or component built by any toolchain (clang, Rust, TinyGo...), ' +
      'with the checks of `enclave build`: the contract is valid, the memory maximum is at most limits.memoryPages, ' +
      'the result loads and starts under the runtime, and every contract op has a handler where the module answers ' +
      'the handler probe (docs/ABI.md §4.1). A module that already carries a contract (or a signature: sign after ' +
      'embedding) is refused, never changed. The input is never modified unless --out names it.',
  )
  .argument('<module>', 'the .wasm module or component, without an enclave.contract section')
  .argument('<contract>', 'the contract.json (docs/ABI.md §6)')
  .option('--out <file>', 'where to write the result, replacing any file there (default: <module>.enclave.wasm beside the module)')
  .option('--json', 'print the result as JSON')
  .action(async (module: string, contractFile: string, opts: { out?: string; json?: boolean }) => {
    try {
      // Loaded here: the build's checks (and the probe's worker) only this command and `build` need.
      const [{ readContractFile }, { embedContract }, { writeAtomic }] = await Promise.all([
        import('../../build/contract-file.js'),
        import('../../build/embed.js'),
        import('../../build/write-atomic.js'),
      ]);
      const bytes = await readModuleBytes(module);
      const contract = await readContractFile(contractFile);
      const embedded = await embedContract(bytes, contract);
      const out = path.resolve(opts.out ?? defaultOutput(module));
      await writeAtomic(out, embedded.bytes, 'choose an --out file this user can write.');
      const report = {
        module,
        output: out,
        kind: embedded.kind,
        bytes: embedded.bytes.length,
        measurement: embedded.measurement,
        name: embedded.contract.name,
        version: embedded.contract.version,
        handlers: embedded.handlers,
      };
      if (opts.json) {
        process.stdout.write(`${stringifyForTerminal(report, 2)}\n`);
        return;
      }
      const lines = [
        `embedded     ${escapeText(report.name)} ${escapeText(report.version)} into ${escapeMessage(shownPath(out))} (${report.kind}, ${report.bytes} bytes)`,
        `measurement  sha256:${report.measurement}`,
        `handlers     ${embedded.handlers.checked ? 'every contract op answered the handler probe' : `not checked: ${escapeText(embedded.handlers.why)}`}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
