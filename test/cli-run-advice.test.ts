// host/cli/_run-errors.ts: the advice `enclave run` adds to an error names a flag only where that
// flag can help.
import { describe, expect, it } from 'vitest';
import { AttestationError, EnclaveError } from '../core/index.js';
import { forTerminal } from '../host/cli/_run-errors.js';

const facts = { worker: false, single: true } as const;

describe('forTerminal', () => {
  it('advises --min-svn for a module refused at load for its svn', () => {
    const err = forTerminal(new AttestationError('rollback'), { ...facts, phase: 'load' }) as EnclaveError;
    expect(err.code).toBe('rollback');
    expect(err.message).toMatch(/--min-svn/);
  });

  it('adds no --min-svn advice to a rollback the enclave answered during a call (stale sealed state)', () => {
    const sent = new EnclaveError('rollback', undefined, { detail: 'sealed state older than its counter' });
    const err = forTerminal(sent, { ...facts, phase: 'call' }) as EnclaveError;
    expect(err).toBe(sent);
    expect(err.message).not.toMatch(/--min-svn/);
  });
});
