/** `enclave run <module.wasm> <op> [json-args]`: one call, reply printed as JSON. */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { UsageError } from '../../../core/index.js';
import { CAPABILITIES, DEFAULT_LIMITS, MAX_LIMITS, decodePlainMsgpack, loadEnclave, type Capability } from '../../../runtime/index.js';
import { escapeJson } from '../_escape.js';
import { formatJson, parseJsonArgs } from '../_json.js';
import { handleError } from '../handle-error.js';

async function readArgsFile(file: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new UsageError(`Cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}.`);
  }
  if (/\.(msgpack|mpk|mp)$/i.test(file)) {
    // Plain data only: msgpackr's own unpack would turn extension 0x74 into a typed array (issue 9).
    try {
      return decodePlainMsgpack(bytes, { depth: MAX_LIMITS.depth, replyItems: DEFAULT_LIMITS.replyItems });
    } catch (err) {
      throw new UsageError(`${file} is not plain msgpack: ${(err as Error).message}`);
    }
  }
  return parseJsonArgs(bytes.toString('utf8'));
}

export const runCommand = new Command('run')
  .description('load an enclave module, call one op, and print the reply as JSON')
  .argument('<module>', 'path to the .wasm module')
  .argument('<op>', 'operation name from the module contract')
  .argument('[json-args]', 'arguments as JSON; bytes as {"$base64": "..."}')
  .option('--input-file <file>', 'read the arguments from a file: msgpack if it ends in .msgpack/.mpk, JSON otherwise')
  .addOption(new Option('--grant <capability...>', 'capabilities to grant').choices(CAPABILITIES))
  .option('--compact', 'print the reply on one line')
  .option('--json', 'print errors as JSON on stderr')
  .action(async (module: string, op: string, jsonArgs: string | undefined, opts) => {
    try {
      if (jsonArgs !== undefined && opts.inputFile !== undefined) {
        throw new UsageError('Give the arguments inline or with --input-file, not both.');
      }
      const args =
        opts.inputFile !== undefined ? await readArgsFile(opts.inputFile) : jsonArgs !== undefined ? parseJsonArgs(jsonArgs) : undefined;
      const enclave = await loadEnclave(module, {
        capabilities: (opts.grant ?? []) as Capability[],
        // The line is the enclave's text: quoted, and escaped for the terminal (../_escape.ts).
        onLog: (level, message) => process.stderr.write(`[enclave ${level}] ${escapeJson(JSON.stringify(message))}\n`),
      });
      try {
        const reply = await enclave.call(op, args);
        process.stdout.write(`${formatJson(reply ?? null, !opts.compact)}\n`);
      } finally {
        enclave.close();
      }
    } catch (err) {
      handleError(err, opts.json);
    }
  });
