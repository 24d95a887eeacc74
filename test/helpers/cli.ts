/** The CLI as users run it (the built dist/), spawned with its own stdin, for the CLI tests. */
import { spawn } from 'node:child_process';
import path from 'node:path';

/** The built CLI entry. */
export const CLI = path.resolve('dist/host/cli/main.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `enclave <args>`: `stdin` is written then closed (closed at once when absent, so a command
 * that reads stdin never waits for a terminal).
 */
export function enclaveCli(args: readonly string[], options: { stdin?: string | Uint8Array; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A CLI that stops reading early (a usage error) closes its end: not the test's failure.
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(options.stdin ?? '');
  });
}

/** The one JSON error object a `--json` command printed on stderr (its last line). */
export function jsonError(stderr: string): { code: string; message: string; detail?: string } {
  const last = stderr.trim().split('\n').at(-1) ?? '';
  return (JSON.parse(last) as { error: { code: string; message: string; detail?: string } }).error;
}
