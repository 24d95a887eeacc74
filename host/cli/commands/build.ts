/** `enclave build [module-dir...]`: compile enclave modules and embed their contracts. */
import { Command } from 'commander';
import { buildModules } from '../../build-modules.js';
import { handleError } from '../handle-error.js';

export const buildCommand = new Command('build')
  .description('compile enclave modules (AssemblyScript) to .wasm with their contract embedded')
  .argument('[module-dir...]', 'module directories (default: every enclave-modules/* with a contract.json)')
  .option('--root <dir>', 'project root holding asconfig.json', process.cwd())
  .option('--json', 'print the result as JSON')
  .action(async (dirs: string[], opts) => {
    try {
      const built = await buildModules({ root: opts.root, modules: dirs.length > 0 ? dirs : undefined });
      if (opts.json) process.stdout.write(`${JSON.stringify(built, null, 2)}\n`);
      else for (const b of built) process.stdout.write(`built ${b.output} (${b.bytes} bytes)\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
