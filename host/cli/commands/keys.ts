/**
 * `enclave keys list|rotate|revoke <id>`: the software platform's sealing roots (docs/ATTESTATION.md §6.2).
 *
 * - `list [--json]`: every root, revoked ones included, which one is current, when each was made.
 * - `rotate`: a new root becomes current; data sealed under the older active roots still unseals.
 * - `revoke <id> --yes`: destroys a root's secret, so whatever was sealed under it never unseals
 *   again. Destructive: without `--yes` it refuses (usage) and says what it would do. The current
 *   root cannot be revoked (rotate first).
 *
 * A running enclave host sees the change at its next sealing call (it re-reads the key file).
 */
import { Argument, Command } from 'commander';
import { AttestationError, SoftwareAttestationProvider, type SealingRootInfo } from '../../../attest/index.js';
import { EnclaveError, UsageError } from '../../../core/index.js';
import { stringifyForTerminal } from '../_escape.js';
import { parseWhole } from '../_flags.js';
import { handleError } from '../handle-error.js';

/** The actions of `enclave keys`, in the order `--help` lists them. */
const ACTIONS = ['list', 'rotate', 'revoke'] as const;
type Action = (typeof ACTIONS)[number];

interface KeysOptions {
  platformDir?: string;
  json?: boolean;
  yes?: boolean;
}

function table(roots: readonly SealingRootInfo[]): string {
  const rows = roots.map((r) => [String(r.id), r.state, r.current ? 'current' : '', r.createdAt]);
  const head = ['ID', 'STATE', '', 'CREATED'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [head, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function run(action: Action, idText: string | undefined, opts: KeysOptions): void {
  if (action !== 'revoke' && idText !== undefined) throw new UsageError(`\`enclave keys ${action}\` takes no id: did you mean \`enclave keys revoke ${idText}\`?`);
  if (action !== 'revoke' && opts.yes) throw new UsageError('--yes applies to `enclave keys revoke` only.');
  const platform = new SoftwareAttestationProvider(opts.platformDir === undefined ? {} : { dir: opts.platformDir });
  const print = (value: unknown, text: string) => process.stdout.write(opts.json ? `${stringifyForTerminal(value, 2)}\n` : `${text}\n`);

  if (action === 'list') {
    const roots = platform.listSealingRoots();
    print({ current: roots.find((r) => r.current)?.id, roots }, table(roots));
    return;
  }
  if (action === 'rotate') {
    const before = platform.listSealingRoots().filter((r) => r.state === 'active').map((r) => r.id);
    const { id } = platform.rotateSealingRoot();
    print(
      { id, current: true },
      `sealing root ${id} is current: new data seals under it.\n` +
        `Data sealed under ${before.join(', ')} still unseals; reseal it forward, then revoke the old root${before.length > 1 ? 's' : ''} (\`enclave keys revoke <id> --yes\`).`,
    );
    return;
  }
  if (idText === undefined) throw new UsageError('Give the id of the sealing root to revoke: `enclave keys revoke <id> --yes` (see `enclave keys list`).');
  const id = parseWhole(idText, '<id>', 1, 2 ** 31 - 1);
  const root = platform.listSealingRoots().find((r) => r.id === id);
  if (root === undefined) throw new AttestationError('sealing_key_unknown', `The platform has no sealing root ${id}: see \`enclave keys list\`.`);
  if (root.current) throw new EnclaveError('invalid_options', `Sealing root ${id} is the current one and cannot be revoked: rotate first (\`enclave keys rotate\`).`);
  if (root.state === 'revoked') {
    print({ id, state: 'revoked', changed: false }, `sealing root ${id} was revoked already.`);
    return;
  }
  if (!opts.yes) {
    throw new UsageError(
      `Revoking sealing root ${id} destroys its secret: everything sealed under it can never be unsealed again, on this platform or any copy of its key file made from now on. ` +
        `Reseal what you need under the current root first, then run \`enclave keys revoke ${id} --yes\`.`,
    );
  }
  platform.revokeSealingRoot(id);
  print({ id, state: 'revoked', changed: true }, `sealing root ${id} is revoked: its secret is destroyed.`);
}

export const keysCommand = new Command('keys')
  .description("list, rotate or revoke the software platform's sealing roots (revoke destroys what a root sealed)")
  .addArgument(new Argument('<action>', 'what to do').choices(ACTIONS))
  .argument('[id]', 'revoke: the sealing root id (see `enclave keys list`)')
  .option('--yes', 'revoke: confirm that the root and everything it sealed are destroyed')
  .option('--platform-dir <dir>', 'software platform key directory (default $ENCLAVE_PLATFORM_DIR or ~/.enclave)')
  .option('--json', 'print the result (and errors) as JSON')
  .addHelpText(
    'after',
    '\nExamples:\n  enclave keys list\n  enclave keys rotate\n  enclave keys revoke 1 --yes\n\nA running host sees the change at its next sealing call.',
  )
  .action((action: Action, idText: string | undefined, opts: KeysOptions) => {
    try {
      run(action, idText, opts);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
