#!/usr/bin/env node
/** The CLI entry: wires commands, nothing else (one file per command in ./commands). */
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { attestCommand, platformKeyCommand } from './commands/attest.js';
import { buildCommand } from './commands/build.js';
import { inspectCommand } from './commands/inspect.js';
import { keygenCommand } from './commands/keygen.js';
import { runCommand } from './commands/run.js';
import { signCommand } from './commands/sign.js';
import { verifyModuleCommand } from './commands/verify-module.js';
import { verifyCommand } from './commands/verify.js';
import { handleError } from './handle-error.js';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

const program = new Command('enclave')
  .description('WebAssembly-sandboxed enclaves for Node.js')
  .version(version)
  .showHelpAfterError()
  .addCommand(runCommand)
  .addCommand(inspectCommand)
  .addCommand(buildCommand)
  .addCommand(keygenCommand)
  .addCommand(signCommand)
  .addCommand(verifyModuleCommand)
  .addCommand(attestCommand)
  .addCommand(verifyCommand)
  .addCommand(platformKeyCommand);

// Usage errors throw (exit code 2 through handleError) instead of exiting from inside commander.
program.exitOverride();
for (const command of program.commands) command.exitOverride();

program.parseAsync(process.argv).catch((err: unknown) => handleError(err));
