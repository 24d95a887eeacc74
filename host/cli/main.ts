#!/usr/bin/env node
/**
 * The CLI entry: wires commands, nothing else (one file per command in ./commands).
 *
 * Commands load lazily: `enclave run` imports the runtime and never the AssemblyScript compiler or
 * the attestation code, which keeps a cold `enclave run` short (bench/cli-cold.ts measures it).
 * Only `enclave`, `enclave --help` and unknown commands load every command, to list them.
 */
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { stringifyForTerminal } from './_escape.js';
import { EXIT, handleError, parserOutput, wantsJson } from './handle-error.js';

type Loader = () => Promise<Command>;

/** Every command by name, in the order `--help` lists them. */
const COMMANDS: Readonly<Record<string, Loader>> = {
  run: async () => (await import('./commands/run.js')).runCommand,
  inspect: async () => (await import('./commands/inspect.js')).inspectCommand,
  build: async () => (await import('./commands/build.js')).buildCommand,
  'embed-contract': async () => (await import('./commands/embed-contract.js')).embedContractCommand,
  init: async () => (await import('./commands/init.js')).initCommand,
  keygen: async () => (await import('./commands/keygen.js')).keygenCommand,
  sign: async () => (await import('./commands/sign.js')).signCommand,
  'verify-module': async () => (await import('./commands/verify-module.js')).verifyModuleCommand,
  attest: async () => (await import('./commands/attest.js')).attestCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  'platform-key': async () => (await import('./commands/attest.js')).platformKeyCommand,
  keys: async () => (await import('./commands/keys.js')).keysCommand,
  types: async () => (await import('./commands/types.js')).typesCommand,
};

function loadersFor(argv: readonly string[]): Loader[] {
  const first = argv[2];
  if (first === '--version' || first === '-V') return [];
  if (first !== undefined && Object.hasOwn(COMMANDS, first)) return [COMMANDS[first] as Loader];
  return Object.values(COMMANDS);
}

/**
 * Output that cannot be written. A reader that went away (EPIPE: `enclave run ... | head -c 10`)
 * ends the output there, quietly, with the exit code of the command; any other failure (ENOSPC:
 * `> /dev/full`) is exit 1, said on stderr when stdout failed. Without a listener Node turns either
 * into an unhandled 'error' event: a crash with its stack trace.
 */
function onOutputError(json: boolean): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') return;
      process.exitCode = EXIT.failed;
      if (stream !== process.stdout) return;
      const error = { code: 'internal', message: `Cannot write the output: ${err.code ?? 'error'}.` };
      process.stderr.write(json ? `${stringifyForTerminal({ error })}\n` : `error[${error.code}]: ${error.message}\n`);
    });
  }
}

/**
 * With `--json`, stderr carries JSON lines only: a process warning (an untrusted fuel cache
 * directory, a deprecation) is `{"warning": {"code", "message"}}` instead of Node's
 * `(node:123) Warning: ...` text, which a script parsing stderr would choke on.
 */
function jsonWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: unknown }) => {
    const warning = { code: typeof w.code === 'string' ? w.code : w.name, message: w.message };
    process.stderr.write(`${stringifyForTerminal({ warning })}\n`);
  });
}

/** Whether errors (and warnings) are JSON lines: computed once, for the command and for a failure of main itself. */
const json = wantsJson(process.argv);

async function main(): Promise<void> {
  onOutputError(json);
  if (json) jsonWarnings();
  // msgpackr's native string extractor (msgpackr-extract) costs a cold process more to find and
  // load (~20 ms) than it saves on the CLI's few messages; MSGPACKR_NATIVE_ACCELERATION_DISABLED=false
  // in the environment keeps it.
  process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';
  const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };
  const program = new Command('enclave')
    .description('WebAssembly-sandboxed enclaves for Node.js')
    .version(version)
    .showHelpAfterError();
  for (const command of await Promise.all(loadersFor(process.argv).map((load) => load()))) program.addCommand(command);
  // Usage errors throw (exit code 2 through handleError) instead of exiting from inside commander.
  program.exitOverride();
  for (const command of program.commands) command.exitOverride();
  // A command line that does not parse is error[usage] too, or one JSON error with --json (./handle-error.ts).
  parserOutput([program, ...program.commands], json);
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => handleError(err, json));
