/** `enclave init <dir>`: scaffold a new enclave project (host/scaffold/). */
import path from 'node:path';
import { Command } from 'commander';
import { initProject } from '../../scaffold/init-project.js';
import { shellWord } from '../../scaffold/kv-template.js';
import { escapeText, stringifyForTerminal } from '../_escape.js';
import { shownPath } from '../_paths.js';
import { handleError } from '../handle-error.js';

/** The commands to run next, from the working directory. */
function nextSteps(dir: string, name: string): string[] {
  // Inside the working directory: the short relative path; anywhere else: the absolute one.
  const base = shownPath(dir);
  return [
    `npx enclave build ${shellWord(base)}`,
    `npx enclave run ${shellWord(path.join(base, 'build', `${name}.wasm`))} put '{"k":"a","v":"b"}'`,
    `npx enclave types ${shellWord(base)} --out ${shellWord(path.join(base, 'build', `${name}.d.ts`))}`,
    `node --test ${shellWord(path.join(base, 'test', `${name}.test.mjs`))}`,
  ];
}

export const initCommand = new Command('init')
  .description('create a new enclave project: index.ts, contract.json, tsconfig.json, a host example, a test and a README')
  .argument('<dir>', 'the project directory (created if missing; must be empty unless --force)')
  .option('--name <name>', 'the enclave name in its contract (default: the directory name)')
  .option('--force', 'write into a non-empty directory (an existing file is still never overwritten)')
  .option('--json', 'print the result as JSON')
  .action(async (dir: string, opts) => {
    try {
      const result = await initProject(dir, { name: opts.name, force: opts.force === true });
      const next = nextSteps(result.dir, result.name);
      if (opts.json) {
        process.stdout.write(`${stringifyForTerminal({ ...result, next })}\n`);
        return;
      }
      const width = Math.max(...result.files.map((f) => f.path.length));
      const lines = [
        `created enclave "${result.name}" in ${escapeText(result.dir)}`,
        ...result.files.map((f) => `  ${f.path.padEnd(width)}  ${f.about}`),
        '',
        'next:',
        ...next.map((line) => `  ${escapeText(line)}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
