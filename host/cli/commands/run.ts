/**
 * `enclave run <module.wasm> <op> [json-args]`: one call, reply printed as JSON;
 * `enclave run <module.wasm> --ndjson`: several calls to one instance, one per stdin line (../_ndjson.ts).
 */
import { stat } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { EnclaveError, UsageError } from '../../../core/index.js';
import {
  CAPABILITIES,
  DEFAULT_DEADLINE_MS,
  DEFAULT_LIMITS,
  DEFAULT_POLICY,
  MAX_FUEL,
  MAX_LIMITS,
  STATE_POLICIES,
  compileEnclave,
  createWorkerEnclave,
  decodePlainMsgpack,
  readModuleBytes,
  type Capability,
  type EnclaveHandle,
  type EnclaveModule,
  type EnclaveOptions,
  type Limits,
  type StatePolicy,
} from '../../../runtime/index.js';
import type { EnclavePlatform } from '../../../runtime/index.js';
import { escapeJson } from '../_escape.js';
import { parseWhole } from '../_flags.js';
import { formatJson, parseJsonArgs } from '../_json.js';
import { serveLines, type LineCall } from '../_ndjson.js';
import { capabilitiesDenied, forTerminal, type RunFacts } from '../_run-errors.js';
import { readInputFile, readStream, utf8 } from '../_stdin.js';
import { parseSvn } from '../_svn.js';
import { EXIT, handleError } from '../handle-error.js';

/** The flags of `enclave run`, as commander hands them over. */
interface RunFlags {
  inputFile?: string;
  ndjson?: boolean;
  stats?: boolean;
  grant?: string[];
  platformDir?: string;
  fuel?: string;
  memoryPages?: string;
  worker?: boolean;
  deadlineMs?: string;
  state?: StatePolicy;
  session?: string;
  trust?: string[];
  minSvn?: string;
  compact?: boolean;
  json?: boolean;
}

/** The flags checked and settled, before anything is read. */
interface RunPlan {
  readonly policy: Partial<Limits>;
  readonly deadlineMs: number | undefined;
  readonly minSvn: number;
}

/** Every check that needs no file: conflicting flags and numbers, refused as bad usage (exit 2). */
function settleFlags(op: string | undefined, jsonArgs: string | undefined, opts: RunFlags): RunPlan {
  if (opts.ndjson) {
    if (op !== undefined) throw new UsageError('With --ndjson the calls come from stdin, one {"op": ..., "args": ...} per line: give no op on the command line.');
    if (opts.inputFile !== undefined) throw new UsageError('--input-file gives the arguments of one call; with --ndjson each line carries its own.');
  } else {
    if (op === undefined) throw new UsageError('Give the op to call (enclave run <module> <op> [json-args]), or --ndjson to read calls from stdin.');
    if (jsonArgs !== undefined && opts.inputFile !== undefined) throw new UsageError('Give the arguments inline or with --input-file, not both.');
  }
  // The host's policy only lowers the contract's limits (runtime/options.ts): --fuel above the
  // contract's limits.fuel gives the contract's.
  const policy: Partial<Limits> = {
    ...(opts.fuel === undefined ? {} : { fuel: parseWhole(opts.fuel, '--fuel', 1, MAX_FUEL) }),
    ...(opts.memoryPages === undefined ? {} : { memoryPages: parseWhole(opts.memoryPages, '--memory-pages', 1, MAX_LIMITS.memoryPages) }),
  };
  let deadlineMs: number | undefined;
  if (opts.deadlineMs !== undefined) {
    // setTimeout takes at most 2^31 - 1 ms.
    deadlineMs = parseWhole(opts.deadlineMs, '--deadline-ms', 1, 2 ** 31 - 1);
    if (!opts.worker) throw new UsageError('--deadline-ms needs --worker: an in-process call cannot be interrupted.');
  }
  if (opts.minSvn !== undefined && opts.trust === undefined) throw new UsageError('--min-svn needs --trust: it is the lowest svn accepted from those signers.');
  const minSvn = parseSvn(opts.minSvn ?? '0', '--min-svn');
  if (opts.session !== undefined && opts.state !== 'per-session') throw new UsageError('--session needs --state per-session.');
  if (opts.state === 'per-session' && opts.session === undefined && !opts.ndjson) {
    throw new UsageError('--state per-session needs --session <id> for the call.');
  }
  if (opts.platformDir !== undefined && !(opts.grant ?? []).some((c) => c === 'seal' || c === 'counter' || c === 'attest')) {
    throw new UsageError('--platform-dir is the platform of --grant seal, counter or attest; grant one of them, or leave it out.');
  }
  return { policy, deadlineMs, minSvn };
}

/** The arguments of the one call: inline, from a file, from stdin (`-`), or none. */
async function readArgs(jsonArgs: string | undefined, inputFile: string | undefined): Promise<unknown> {
  if (inputFile !== undefined) {
    const bytes = await readInputFile(inputFile, 'the input file');
    if (/\.(msgpack|mpk|mp)$/i.test(inputFile)) {
      // Plain data only: msgpackr's own unpack would turn extension 0x74 into a typed array (issue 9).
      try {
        return decodePlainMsgpack(bytes, { depth: MAX_LIMITS.depth, replyItems: DEFAULT_LIMITS.replyItems });
      } catch (err) {
        throw new UsageError(`${inputFile} is not plain msgpack: ${(err as Error).message}`);
      }
    }
    return parseJsonArgs(utf8(bytes, inputFile));
  }
  if (jsonArgs === '-') return parseJsonArgs(utf8(await readStream(process.stdin, 'stdin'), 'stdin'));
  return jsonArgs === undefined ? undefined : parseJsonArgs(jsonArgs);
}

/**
 * The module's bytes. A path that cannot be read is the command line's mistake (exit 2, with the
 * path); bytes that are no module are the module's (`invalid_module`, exit 1).
 */
async function readModule(path: string): Promise<Uint8Array> {
  try {
    return await readModuleBytes(path);
  } catch (err) {
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (err instanceof EnclaveError && typeof cause?.code === 'string') throw new UsageError(`Cannot read ${path}: ${cause.code}.`);
    throw err;
  }
}

/** The trust policy of `--trust` (keys read by attest, loaded only then). */
async function readTrust(files: readonly string[], minSvn: number) {
  const { readPublicKeyFile } = await import('../../../attest/index.js');
  const keys = await Promise.all(
    files.map(async (file) => {
      try {
        return await readPublicKeyFile(file);
      } catch (err) {
        const cause = (err as { cause?: { code?: unknown } }).cause;
        if (typeof cause?.code === 'string') throw new UsageError(`Cannot read the --trust key ${file}: ${cause.code}.`);
        if (err instanceof EnclaveError && err.code === 'invalid_key') {
          // A directory, FIFO or device cannot be read, as for the module and --input-file (exit 2);
          // a file that holds no key is invalid_key. Either way, say which of the --trust files.
          const st = await stat(file).catch(() => undefined);
          if (st !== undefined && !st.isFile()) throw new UsageError(`Cannot read the --trust key ${file}: not a regular file.`);
          throw new EnclaveError('invalid_key', `The --trust key ${file} is not a public key: ${err.message}`, { cause: err });
        }
        throw err;
      }
    }),
  );
  return { trusted: keys.map((publicKey) => ({ publicKey, minSvn })) };
}

/** The software platform that serves `--grant seal` and `--grant attest`. */
async function platform(dir: string | undefined): Promise<EnclavePlatform> {
  const { SoftwareAttestationProvider } = await import('../../../attest/index.js');
  return new SoftwareAttestationProvider(dir === undefined ? {} : { dir });
}

/** What one call used, for `--stats`: fuel of the budget in force, and wall time. */
interface Stats {
  readonly fuel: number;
  readonly fuelLimit: number;
  readonly ms: number;
}

function printStats(stats: Stats, json: boolean): void {
  if (json) process.stderr.write(`${escapeJson(JSON.stringify({ stats }))}\n`);
  else process.stderr.write(`stats: fuel ${stats.fuel} of ${stats.fuelLimit}, ${stats.ms} ms\n`);
}

/** Runs one call with its stats; rethrows the call's error after noting them. */
async function timedCall(enclave: EnclaveHandle, call: LineCall): Promise<{ reply?: unknown; error?: unknown; stats: Stats }> {
  const used = { fuel: 0 };
  const t0 = performance.now();
  try {
    const reply = await enclave.call(call.op, call.args, { stats: used, ...(call.session === undefined ? {} : { session: call.session }) });
    return { reply, stats: { fuel: used.fuel, fuelLimit: enclave.limits.fuel, ms: round(performance.now() - t0) } };
  } catch (error) {
    return { error, stats: { fuel: used.fuel, fuelLimit: enclave.limits.fuel, ms: round(performance.now() - t0) } };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

const EXAMPLES = `
Examples:
  enclave run echo.wasm echo '{"hello": "enclave"}'
  echo '{"by": 2}' | enclave run counter.wasm incr -
  printf '%s\\n' '{"op":"incr","args":{"by":2}}' '{"op":"reset"}' | enclave run counter.wasm --ndjson
  enclave run --worker --deadline-ms 200 --fuel 50000000 --stats pw.wasm check '{"password": "x"}'

--grant and --trust take several values: give them after the module, op and arguments.

Exit codes: 0 ok; 1 the module was refused or a call failed (error[<code>] on stderr);
2 bad usage: the command line, a flag, or a file named on it that cannot be read.
With --ndjson: the worst of the lines (a failed call does not end the session).`;

export const runCommand = new Command('run')
  .description('load an enclave module and call one op, or several with --ndjson; replies are printed as JSON')
  .argument('<module>', 'path to the .wasm module')
  .argument('[op]', 'operation name from the module contract (none with --ndjson)')
  .argument('[json-args]', 'arguments as JSON, bytes as {"$base64": "..."}; - reads them from stdin')
  .option('--input-file <file>', 'read the arguments from a file: msgpack if it ends in .msgpack/.mpk, JSON otherwise')
  .option('--ndjson', 'read calls from stdin, one {"op", "args", "session"?, "id"?} object per line, and print one {"ok"} or {"error"} line each, all to one instance')
  .option('--stats', 'print the fuel and time each call used: on stderr, or in each --ndjson reply line')
  .addOption(new Option('--grant <capability...>', 'capabilities to grant').choices(CAPABILITIES))
  .option('--platform-dir <dir>', 'with --grant seal/attest: software platform key directory (default $ENCLAVE_PLATFORM_DIR or ~/.enclave)')
  .option('--fuel <n>', `fuel (instruction budget) of a call, at most the contract's limits.fuel (default: the lower of that and ${DEFAULT_POLICY.fuel})`)
  .option('--memory-pages <n>', `most 64 KiB pages of memory a module may declare (default ${DEFAULT_POLICY.memoryPages})`)
  .option('--worker', 'run the enclave in its own worker thread, where a call is stopped at its deadline')
  .option('--deadline-ms <n>', `with --worker: wall-clock limit of one call (default ${DEFAULT_DEADLINE_MS})`)
  .addOption(new Option('--state <policy>', 'which instance serves a call (default persistent)').choices(STATE_POLICIES))
  .option('--session <id>', 'with --state per-session: the session of the call (of every --ndjson line without one)')
  .option('--trust <pubkey-file...>', 'load the module only if one of these keys signed it')
  .option('--min-svn <n>', 'with --trust: lowest svn accepted from those signers (default 0)')
  .option('--compact', 'print the reply on one line')
  .option('--json', 'print errors (and --stats) as JSON on stderr')
  .addHelpText('after', EXAMPLES)
  .action(async (module: string, op: string | undefined, jsonArgs: string | undefined, opts: RunFlags) => {
    const json = opts.json === true;
    let facts: RunFacts = { phase: 'load', worker: opts.worker === true, single: !opts.ndjson };
    try {
      const plan = settleFlags(op, jsonArgs, opts);
      const args = opts.ndjson ? undefined : await readArgs(jsonArgs, opts.inputFile);
      const grants = (opts.grant ?? []) as Capability[];
      const trust = opts.trust === undefined ? undefined : await readTrust(opts.trust, plan.minSvn);
      const attestation = grants.some((c) => c === 'seal' || c === 'counter' || c === 'attest') ? await platform(opts.platformDir) : undefined;
      const bytes = await readModule(module);
      const mod: EnclaveModule = await compileEnclave(bytes, trust === undefined ? {} : { trust });
      const limits = mod.contract.limits;
      facts = {
        ...facts,
        contractFuel: Math.min(limits.fuel, MAX_FUEL),
        memoryPages: plan.policy.memoryPages ?? DEFAULT_POLICY.memoryPages,
        moduleMaxPages: mod.info.memories[0]?.maximum,
      };
      const missing = mod.contract.capabilities.filter((c) => !grants.includes(c));
      if (missing.length > 0) throw capabilitiesDenied(mod.contract.name, missing);
      const options: EnclaveOptions = {
        capabilities: grants,
        policy: plan.policy,
        ...(opts.state === undefined ? {} : { state: opts.state }),
        ...(attestation === undefined ? {} : { attestation }),
        // The line is the enclave's text: quoted, and escaped for the terminal (../_escape.ts).
        onLog: (level, message) => process.stderr.write(`[enclave ${level}] ${escapeJson(JSON.stringify(message))}\n`),
      };
      const enclave: EnclaveHandle = opts.worker
        ? await createWorkerEnclave(mod, { ...options, ...(plan.deadlineMs === undefined ? {} : { deadlineMs: plan.deadlineMs }) })
        : mod.create(options);
      // The fuel in force is the runtime's settled limit (contract capped by policy), read, not re-derived.
      facts = { ...facts, phase: 'call', fuel: enclave.limits.fuel };
      try {
        if (opts.ndjson) {
          process.exitCode = await serveLines(process.stdin, process.stdout, async (call) => {
            const session = call.session ?? opts.session;
            if (call.session !== undefined && opts.state !== 'per-session') throw new UsageError('A "session" needs --state per-session.');
            if (opts.state === 'per-session' && session === undefined) throw new UsageError('--state per-session needs a "session" on the line, or --session.');
            const r = await timedCall(enclave, { ...call, session });
            const stats = opts.stats ? { stats: r.stats } : {};
            return 'error' in r ? { error: forTerminal(r.error, facts), ...stats } : { reply: r.reply, ...stats };
          });
        } else {
          const r = await timedCall(enclave, { op: op!, args, session: opts.session });
          if ('error' in r) {
            handleError(forTerminal(r.error, facts), json);
          } else {
            process.stdout.write(`${formatJson(r.reply ?? null, !opts.compact)}\n`);
            process.exitCode = EXIT.ok;
          }
          if (opts.stats) printStats(r.stats, json);
        }
      } finally {
        await enclave.close();
      }
    } catch (err) {
      handleError(forTerminal(err, facts), json);
    }
  });
