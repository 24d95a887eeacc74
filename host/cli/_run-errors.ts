/**
 * The runtime's errors as a person at a terminal reads them: the same code (a script matches on
 * it), with the advice of the message naming the flag of `enclave run` that helps (`--grant`,
 * `--fuel`, `--memory-pages`, `--deadline-ms`, `--trust`, `--min-svn`, `--ndjson`) instead of a
 * JavaScript option. The runtime's own messages speak to a program and stay as they are.
 */
import { EnclaveError, ERROR_MESSAGES, quoteInput } from '../../core/index.js';

/** What the CLI knows when a call or a load fails. */
export interface RunFacts {
  /** Fuel per call in force (the contract's, capped by the policy), once the contract is known. */
  readonly fuel?: number;
  /** The contract's own `limits.fuel`, capped at the runtime's ceiling: what `--fuel` can reach. */
  readonly contractFuel?: number;
  /** Memory pages the policy allows, and the module's declared maximum. */
  readonly memoryPages?: number;
  readonly moduleMaxPages?: number | undefined;
  /** Where the error came from: loading the module, or a call. */
  readonly phase: 'load' | 'call';
  readonly worker: boolean;
  /** One call per process (not `--ndjson`). */
  readonly single: boolean;
}

/** The part of a message before its advice: a runtime message (no advice), or a code's default cut at its colon. */
function what(err: EnclaveError): string {
  const message = err.message === ERROR_MESSAGES[err.code] ? err.message.slice(0, err.message.indexOf(': ')) : err.message;
  return message.replace(/[.:]\s*$/, '');
}

function advise(err: EnclaveError, advice: string): EnclaveError {
  return new EnclaveError(err.code, `${what(err)}: ${advice}.`, { detail: err.detail, cause: err });
}

/**
 * The error a CLI user sees for `err`: the same code and detail, with CLI advice where a flag helps;
 * anything else unchanged.
 */
export function forTerminal(err: unknown, facts: RunFacts): unknown {
  if (!(err instanceof EnclaveError)) return err;
  switch (err.code) {
    case 'fuel_exhausted': {
      const more =
        facts.fuel !== undefined && facts.contractFuel !== undefined && facts.fuel < facts.contractFuel
          ? `pass --fuel <n> for more, up to ${facts.contractFuel} (the contract's limits.fuel)`
          : `raise limits.fuel in the module's contract.json and rebuild it`;
      return advise(err, `${more}, or make the call cheaper; --stats prints the fuel a call uses`);
    }
    case 'memory_limit': {
      const pages = facts.moduleMaxPages;
      if (pages !== undefined && facts.memoryPages !== undefined && pages > facts.memoryPages) {
        return advise(err, `pass --memory-pages ${pages} to allow it, if you trust the module with ${pages * 64} KiB of memory`);
      }
      return err;
    }
    case 'timeout':
      if (facts.phase === 'call' && facts.worker) return advise(err, 'pass a longer --deadline-ms, or make the call cheaper');
      return err;
    case 'untrusted_module':
      return advise(err, "pass the public key of its signer with --trust, or sign it with 'enclave sign'");
    case 'rollback':
      // At load the module's svn is below its signer's floor; during a call the enclave refused sealed
      // state older than its counter, which no flag of ours can or should override.
      return facts.phase === 'load' ? advise(err, 'deploy a newer build, or lower --min-svn') : err;
    case 'state':
      if (facts.phase === 'call' && facts.single) {
        return advise(err, "each 'enclave run' starts a fresh instance: make the calls in one process with --ndjson");
      }
      return err;
    default:
      return err;
  }
}

/**
 * `capability_denied` for capabilities the contract declares and the command line did not grant,
 * in the words of the CLI (the runtime would suggest its JavaScript option).
 */
export function capabilitiesDenied(name: string, missing: readonly string[]): EnclaveError {
  const list = missing.map((c) => `"${c}"`).join(', ');
  return new EnclaveError(
    'capability_denied',
    `The enclave ${quoteInput(name)} needs the ${list} ${missing.length === 1 ? 'capability' : 'capabilities'}: pass --grant ${missing.join(' ')} if you trust it.`,
  );
}
