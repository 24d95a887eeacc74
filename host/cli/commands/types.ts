/**
 * `enclave types <module.wasm|contract.json|dir> [--out file.d.ts] [--name Name]`: the TypeScript
 * types of a contract's ops (host/contract-types.ts), for `loadEnclave<NameOps>(...)`. A module's
 * contract is read from its `enclave.contract` section: the module is never compiled or run.
 */
import { stat, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { EnclaveError, MODULE_BOUNDS, readBoundedFile, UsageError } from '../../../core/index.js';
import { contractOf, contractTypes, typeBaseName } from '../../contract-types.js';
import { escapeMessage, stringifyForTerminal } from '../_escape.js';
import { handleError } from '../handle-error.js';

/** The file to read: the input itself, or `contract.json` in a directory. */
async function inputFile(input: string): Promise<string> {
  const path = resolve(input);
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new UsageError(`Cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}.`);
  }
  if (!info.isDirectory()) return path;
  const contract = join(path, 'contract.json');
  try {
    await stat(contract);
  } catch {
    throw new UsageError(`The directory ${JSON.stringify(path)} has no contract.json: name a module or a contract file.`);
  }
  return contract;
}

/**
 * The input's bytes, bounded as a module's (core/read-bounded.ts): a path that cannot be read or is
 * not a regular file (a FIFO, /dev/zero) is the command line's mistake, `usage` naming it, as in
 * `enclave run`; a file too large for a module is `invalid_module`.
 */
async function readInput(path: string): Promise<Uint8Array> {
  const read = await readBoundedFile(path, MODULE_BOUNDS.moduleBytes);
  switch (read.kind) {
    case 'ok':
      return read.bytes;
    case 'not_regular':
      throw new UsageError(`Cannot read ${JSON.stringify(path)}: not a regular file.`);
    case 'errno':
      throw new UsageError(`Cannot read ${JSON.stringify(path)}: ${read.code}.`);
    case 'too_large':
      throw new EnclaveError(
        'invalid_module',
        `${JSON.stringify(path)} is ${read.size} bytes or more; a module or contract is at most ${MODULE_BOUNDS.moduleBytes} (docs/LIMITS.md, "Module structure").`,
      );
  }
}

export const typesCommand = new Command('types')
  .description('write the TypeScript types of a contract\'s ops (a .d.ts), for typed enclave.call(...)')
  .argument('<input>', 'a module (.wasm), a contract (.json), or a directory with a contract.json')
  .option('--out <file>', 'the .d.ts file to write (default: print it)')
  .option('--name <Name>', 'the base of the type names, PascalCase (default: the contract name: kv -> KvOps, KvEnclave)')
  .option('--json', 'print errors (and, with --out, the result) as JSON')
  .action(async (input: string, opts: { out?: string; name?: string; json?: boolean }) => {
    try {
      const file = await inputFile(input);
      const contract = contractOf(await readInput(file));
      const text = contractTypes(contract, opts.name === undefined ? {} : { name: opts.name });
      if (opts.out === undefined) {
        process.stdout.write(text);
        return;
      }
      const out = resolve(opts.out);
      try {
        await mkdir(dirname(out), { recursive: true });
        await writeFile(out, text);
      } catch (err) {
        throw new UsageError(`Cannot write ${JSON.stringify(out)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}.`);
      }
      const name = opts.name ?? typeBaseName(contract.name);
      if (opts.json) process.stdout.write(`${stringifyForTerminal({ out, ops: `${name}Ops`, enclave: `${name}Enclave` })}\n`);
      else process.stdout.write(`wrote ${escapeMessage(out)}: ${name}Ops, ${name}Enclave\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
