/** `enclave build [dir...] [--out <dir>] [--json]`: compile enclave modules and embed their contracts. */
import { Command } from 'commander';
import { EnclaveError } from '../../../core/index.js';
import { escapeMessage, stringifyForTerminal } from '../_escape.js';
import { shownPath } from '../_paths.js';
import { handleError } from '../handle-error.js';

export const buildCommand = new Command('build')
  .description(
    'compile enclave modules (a directory with index.ts and contract.json) to <dir>/build/<name>.wasm, ' +
      'with the contract embedded, and check that every contract op has a handler',
  )
  .argument('[dir...]', 'module directories, absolute or relative (default: every enclave-modules/* with a contract.json)')
  .option('--out <dir>', 'write <name>.wasm files here instead of each module\'s build/')
  .option('--component', 'also build each module as a component of the world enclave (wit/enclave.wit): <name>.component.wasm')
  .option('--json', 'print the result as JSON')
  .action(async (dirs: string[], opts: { out?: string; json?: boolean; component?: boolean }) => {
    try {
      // Loaded here: the compiler comes with it, and only this command needs it.
      const { buildModules } = await import('../../build-modules.js');
      const built = await buildModules({ dirs, ...(opts.out === undefined ? {} : { out: opts.out }), component: opts.component === true });
      if (opts.json) process.stdout.write(`${stringifyForTerminal(built, 2)}\n`);
      else {
        for (const b of built) {
          process.stdout.write(`built ${escapeMessage(shownPath(b.output))} (${b.bytes} bytes)\n`);
          if (b.component !== undefined) process.stdout.write(`built ${escapeMessage(shownPath(b.component.output))} (${b.component.bytes} bytes)\n`);
        }
      }
    } catch (err) {
      // The compiler's diagnostics are lines: printed as lines, each escaped.
      handleError(err, opts.json, { lines: err instanceof EnclaveError && err.code === 'build_failed' });
    }
  });
