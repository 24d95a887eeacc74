/**
 * host/supervisor/access.ts: the access policy (document, schema, file), the gate every call passes
 * (caller id, allow list, rate limit, quota, the `*` entry and its bounded buckets, reload), and the
 * contract's `requires` order per session. docs/ACCESS-POLICY.md describes what is tested here.
 *
 * The published schema is generated from the zod schema; after changing the schema, regenerate it:
 *   ENCLAVE_WRITE_SCHEMA=1 npx vitest run --config test/vitest.config.ts test/supervisor-access.test.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { EnclaveError } from '../core/index.js';
import {
  ACCESS_POLICY_LIMITS,
  AccessGate,
  accessPolicyJsonSchema,
  isAccessPolicy,
  parseAccessPolicy,
  readAccessPolicy,
  SessionSequences,
  type AccessPolicy,
} from '../host/supervisor/access.js';
import { syncCodeOf } from './helpers/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'enclave-access-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The design's example document (/tmp/team/SUPERVISOR.md, docs/ACCESS-POLICY.md). */
const EXAMPLE = {
  version: 1,
  callers: {
    billing: {
      allow: { signer: ['sign', 'public_key'], echo: '*' },
      rate: { perSecond: 50, burst: 100 },
      quota: { calls: 100000, windowSeconds: 86400 },
      weight: 2,
    },
    '*': { allow: { echo: ['echo'] }, rate: { perSecond: 5, burst: 5 } },
  },
};

/** The refusal an action throws. */
function refusal(action: () => unknown): EnclaveError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(EnclaveError);
    return error as EnclaveError;
  }
  throw new Error('expected a refusal');
}

/** A clock the test moves. */
function fakeClock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const policy = (callers: Record<string, unknown>): AccessPolicy => parseAccessPolicy({ version: 1, callers });

describe('parseAccessPolicy', () => {
  it('parses the example document, filling in defaults, and freezes it', () => {
    const parsed = parseAccessPolicy(EXAMPLE);
    expect(isAccessPolicy(parsed)).toBe(true);
    expect(Object.isFrozen(parsed)).toBe(true);
    const billing = parsed.callers.get('billing')!;
    expect([...(billing.allow.get('signer') as ReadonlySet<string>)]).toEqual(['sign', 'public_key']);
    expect(billing.allow.get('echo')).toBe('*');
    expect(billing.rate).toEqual({ perSecond: 50, burst: 100 });
    expect(billing.quota).toEqual({ calls: 100000, windowSeconds: 86400 });
    expect(billing.weight).toBe(2);
    const any = parsed.callers.get('*')!;
    expect(any.weight).toBe(1);
    expect(any.quota).toBeUndefined();
  });

  it('accepts the bounds themselves', () => {
    const l = ACCESS_POLICY_LIMITS;
    expect(() =>
      policy({
        ['a'.repeat(l.callerIdLength)]: {
          allow: { ['e'.repeat(64)]: ['_'.repeat(64)] },
          rate: { perSecond: l.maxPerSecond, burst: l.maxBurst },
          quota: { calls: l.maxQuotaCalls, windowSeconds: l.maxWindowSeconds },
          weight: l.maxWeight,
        },
        'svc.A-1:x@y/z_w': { allow: {}, rate: { perSecond: 0.001, burst: 1 }, quota: { calls: 1, windowSeconds: 1 }, weight: 1 },
      }),
    ).not.toThrow();
  });

  // Each: the document, and what the message must say (the first wrong field, named).
  const INVALID: [string, unknown, string][] = [
    ['not an object', 5, 'the document must be a JSON object'],
    ['null', null, 'the document must be a JSON object'],
    ['an array', [], 'the document must be a JSON object'],
    ['undefined', undefined, 'the document must be a JSON object'],
    ['no version', { callers: {} }, 'version is required'],
    ['version 2', { version: 2, callers: {} }, 'version must be 1'],
    ['version "1"', { version: '1', callers: {} }, 'version must be 1'],
    ['no callers', { version: 1 }, 'callers is required'],
    ['callers not an object', { version: 1, callers: [] }, 'callers must be an object'],
    ['unknown top-level field', { version: 1, callers: {}, extra: 1 }, 'the document has an unknown field "extra"'],
    ['caller id with a space', { version: 1, callers: { 'a b': { allow: {} } } }, 'callers has the caller id "a b"'],
    ['empty caller id', { version: 1, callers: { '': { allow: {} } } }, 'callers has the caller id ""'],
    ['caller id of 129', { version: 1, callers: { ['a'.repeat(129)]: { allow: {} } } }, 'callers has the caller id "aaaa'],
    ['caller not an object', { version: 1, callers: { a: 1 } }, 'callers["a"] must be an object'],
    ['no allow', { version: 1, callers: { a: {} } }, 'callers["a"].allow is required'],
    ['allow an array', { version: 1, callers: { a: { allow: [] } } }, 'callers["a"].allow must be an object'],
    ['unknown caller field', { version: 1, callers: { a: { allow: {}, rates: {} } } }, 'callers["a"] has an unknown field "rates"'],
    ['enclave name upper case', { version: 1, callers: { a: { allow: { Signer: '*' } } } }, 'callers["a"].allow has the enclave name "Signer"'],
    ['enclave name of 65', { version: 1, callers: { a: { allow: { ['e'.repeat(65)]: '*' } } } }, 'has the enclave name "eeee'],
    ['ops neither "*" nor a list', { version: 1, callers: { a: { allow: { e: 'all' } } } }, 'callers["a"].allow["e"] must be "*" or a list'],
    ['ops a number', { version: 1, callers: { a: { allow: { e: 5 } } } }, 'callers["a"].allow["e"] must be "*" or a list'],
    ['empty op list', { version: 1, callers: { a: { allow: { e: [] } } } }, 'callers["a"].allow["e"] must be "*" or a list of 1..1000'],
    ['an op twice', { version: 1, callers: { a: { allow: { e: ['x', 'x'] } } } }, 'callers["a"].allow["e"] must be "*" or a list of 1..1000 distinct'],
    ['op name upper case', { version: 1, callers: { a: { allow: { e: ['ok', 'Bad'] } } } }, 'callers["a"].allow["e"][1] must match'],
    ['op name not a string', { version: 1, callers: { a: { allow: { e: [1] } } } }, 'callers["a"].allow["e"] must be'],
    ['too many ops', { version: 1, callers: { a: { allow: { e: Array.from({ length: 1001 }, (_, i) => `op${i}`) } } } }, 'callers["a"].allow["e"] must be'],
    ['rate not an object', { version: 1, callers: { a: { allow: {}, rate: 5 } } }, 'callers["a"].rate must be an object'],
    ['rate 0', { version: 1, callers: { a: { allow: {}, rate: { perSecond: 0, burst: 1 } } } }, 'callers["a"].rate.perSecond must be a number > 0'],
    ['rate negative', { version: 1, callers: { a: { allow: {}, rate: { perSecond: -1, burst: 1 } } } }, 'rate.perSecond must be'],
    ['rate too high', { version: 1, callers: { a: { allow: {}, rate: { perSecond: 1e6 + 1, burst: 1 } } } }, 'rate.perSecond must be'],
    ['rate a string', { version: 1, callers: { a: { allow: {}, rate: { perSecond: '5', burst: 1 } } } }, 'rate.perSecond must be'],
    ['no perSecond', { version: 1, callers: { a: { allow: {}, rate: { burst: 1 } } } }, 'rate.perSecond is required'],
    ['no burst', { version: 1, callers: { a: { allow: {}, rate: { perSecond: 1 } } } }, 'rate.burst is required'],
    ['burst 0', { version: 1, callers: { a: { allow: {}, rate: { perSecond: 1, burst: 0 } } } }, 'rate.burst must be an integer from 1'],
    ['burst fractional', { version: 1, callers: { a: { allow: {}, rate: { perSecond: 1, burst: 1.5 } } } }, 'rate.burst must be an integer'],
    ['burst too high', { version: 1, callers: { a: { allow: {}, rate: { perSecond: 1, burst: 1e6 + 1 } } } }, 'rate.burst must be'],
    ['unknown rate field', { version: 1, callers: { a: { allow: {}, rate: { perSecond: 1, burst: 1, per: 's' } } } }, 'callers["a"].rate has an unknown field "per"'],
    ['quota not an object', { version: 1, callers: { a: { allow: {}, quota: [] } } }, 'callers["a"].quota must be an object'],
    ['quota calls 0', { version: 1, callers: { a: { allow: {}, quota: { calls: 0, windowSeconds: 1 } } } }, 'quota.calls must be an integer from 1'],
    ['quota calls fractional', { version: 1, callers: { a: { allow: {}, quota: { calls: 1.5, windowSeconds: 1 } } } }, 'quota.calls must be'],
    ['quota calls too high', { version: 1, callers: { a: { allow: {}, quota: { calls: 1e12 + 1, windowSeconds: 1 } } } }, 'quota.calls must be'],
    ['no windowSeconds', { version: 1, callers: { a: { allow: {}, quota: { calls: 1 } } } }, 'quota.windowSeconds is required'],
    ['window 0', { version: 1, callers: { a: { allow: {}, quota: { calls: 1, windowSeconds: 0 } } } }, 'quota.windowSeconds must be an integer from 1'],
    ['window over a year', { version: 1, callers: { a: { allow: {}, quota: { calls: 1, windowSeconds: 366 * 86400 + 1 } } } }, 'quota.windowSeconds must be'],
    ['unknown quota field', { version: 1, callers: { a: { allow: {}, quota: { calls: 1, windowSeconds: 1, x: 0 } } } }, 'quota has an unknown field "x"'],
    ['weight 0', { version: 1, callers: { a: { allow: {}, weight: 0 } } }, 'callers["a"].weight must be an integer from 1 to 100'],
    ['weight 101', { version: 1, callers: { a: { allow: {}, weight: 101 } } }, 'callers["a"].weight must be'],
    ['weight fractional', { version: 1, callers: { a: { allow: {}, weight: 1.5 } } }, 'callers["a"].weight must be'],
    ['"__proto__" caller', JSON.parse('{"version":1,"callers":{"__proto__":{"allow":{}}}}'), 'caller id "__proto__"'],
    ['"__proto__" enclave', JSON.parse('{"version":1,"callers":{"a":{"allow":{"__proto__":"*"}}}}'), 'the enclave name "__proto__"'],
    ['"__proto__" caller field', JSON.parse('{"version":1,"callers":{"a":{"allow":{},"__proto__":{}}}}'), 'unknown field "__proto__"'],
    ['"__proto__" top-level field', JSON.parse('{"version":1,"callers":{},"__proto__":{}}'), 'unknown field "__proto__"'],
  ];
  it.each(INVALID)('refuses %s, naming the field', (_name, doc, message) => {
    const error = refusal(() => parseAccessPolicy(doc));
    expect(error.code).toBe('invalid_access_policy');
    expect(error.message).toContain(message);
  });

  it('refuses more callers or enclaves than the bounds', () => {
    const callers: Record<string, unknown> = {};
    for (let i = 0; i <= ACCESS_POLICY_LIMITS.maxCallers; i++) callers[`c${i}`] = { allow: {} };
    expect(refusal(() => policy(callers)).message).toContain('callers must name at most 10000 callers');
    const allow: Record<string, string> = {};
    for (let i = 0; i <= ACCESS_POLICY_LIMITS.maxEnclavesPerCaller; i++) allow[`e${i}`] = '*';
    expect(refusal(() => policy({ a: { allow } })).message).toContain('callers["a"].allow must name at most 1000 enclaves');
  });

  it('quotes document text in messages: control and bidi characters escaped, long text cut', () => {
    const field = 'x\u202e\u0007\u001b[31m';
    const message = refusal(() => policy({ a: { allow: {}, [field]: 1 } })).message;
    expect(message).toContain('"x\\u202e\\u0007\\u001b[31m"');
    expect(message).not.toMatch(/[\u0000-\u001f\u202e]/);
    const long = refusal(() => policy({ ['x'.repeat(1_000_000)]: { allow: {} } })).message;
    expect(long.length).toBeLessThan(1000);
  });

  it('takes the JSON form of the document once: what is validated is what is used', () => {
    let reads = 0;
    const doc = {
      version: 1,
      get callers() {
        reads += 1;
        // A second read would get an open door.
        return reads === 1 ? { a: { allow: { e: ['x'] } } } : { a: { allow: { e: '*' } } };
      },
    };
    const parsed = parseAccessPolicy(doc);
    expect(reads).toBe(1);
    expect(parsed.callers.get('a')!.allow.get('e')).toEqual(new Set(['x']));
  });

  it('refuses a document JSON cannot hold, or larger than 1 MiB as JSON', () => {
    const cyclic: Record<string, unknown> = { version: 1 };
    cyclic.callers = cyclic;
    expect(refusal(() => parseAccessPolicy(cyclic)).message).toContain('cannot be written as JSON');
    expect(syncCodeOf(() => parseAccessPolicy({ version: 1, callers: {}, n: 1n }))).toBe('invalid_access_policy');
    const throwing = { version: 1, get callers(): never { throw new Error('boom'); } };
    expect(syncCodeOf(() => parseAccessPolicy(throwing))).toBe('invalid_access_policy');
    const big = { version: 1, callers: { a: { allow: {}, pad: 'x'.repeat(ACCESS_POLICY_LIMITS.maxBytes) } } };
    expect(refusal(() => parseAccessPolicy(big)).message).toContain('larger than 1048576');
  });

  it('keeps keys such as "constructor" and "hasOwnProperty" as plain names', () => {
    const parsed = policy({ constructor: { allow: { echo: ['constructor', 'to_string'] } }, hasOwnProperty: { allow: {} } });
    expect([...parsed.callers.keys()]).toEqual(['constructor', 'hasOwnProperty']);
    expect(parsed.callers.get('toString')).toBeUndefined();
  });
});

describe('readAccessPolicy', () => {
  it('reads and parses a policy file', async () => {
    const file = join(dir, 'ok.json');
    writeFileSync(file, JSON.stringify(EXAMPLE));
    const parsed = await readAccessPolicy(file);
    expect(isAccessPolicy(parsed)).toBe(true);
    expect(parsed.callers.get('billing')!.weight).toBe(2);
  });

  it.each([
    ['a missing file', () => join(dir, 'missing.json'), 'cannot be read (ENOENT)'],
    ['a directory', () => dir, 'is not a regular file'],
    ['a file over 1 MiB', () => write('big.json', ' '.repeat(ACCESS_POLICY_LIMITS.maxBytes + 1)), 'is larger than 1048576 bytes'],
    ['a file that is not UTF-8', () => write('latin1.json', Buffer.from([0x7b, 0xff, 0x7d])), 'is not UTF-8 JSON'],
    ['a file that is not JSON', () => write('text.json', 'version: 1'), 'is not UTF-8 JSON'],
    ['a file with an invalid policy', () => write('bad.json', '{"version":2,"callers":{}}'), 'version must be 1'],
  ])('refuses %s with invalid_access_policy', async (_name, path, message) => {
    const error = await readAccessPolicy(path()).then(
      () => undefined,
      (e: unknown) => e as EnclaveError,
    );
    expect(error).toBeInstanceOf(EnclaveError);
    expect(error!.code).toBe('invalid_access_policy');
    expect(error!.message).toContain(message);
  });

  it('refuses a FIFO without waiting for a writer', async () => {
    const fifo = join(dir, 'policy.fifo');
    execFileSync('mkfifo', [fifo]);
    const error = await readAccessPolicy(fifo).catch((e: unknown) => e as EnclaveError);
    expect((error as EnclaveError).code).toBe('invalid_access_policy');
    expect((error as EnclaveError).message).toContain('is not a regular file');
  });

  it('quotes the path it names', async () => {
    const error = await readAccessPolicy(join(dir, 'no\u001b[2Jsuch')).catch((e: unknown) => e as EnclaveError);
    expect((error as EnclaveError).message).toContain('no\\u001b[2Jsuch');
  });
});

function write(name: string, content: string | Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

describe('AccessGate: who may call what', () => {
  it('admits an allowed call and returns the caller weight', () => {
    const gate = new AccessGate(parseAccessPolicy(EXAMPLE));
    expect(gate.admit('billing', 'signer', 'sign')).toBe(2);
    expect(gate.admit('billing', 'echo', 'anything_at_all')).toBe(2);
    expect(gate.admit('someone', 'echo', 'echo')).toBe(1);
  });

  it('only takes a policy parseAccessPolicy returned', () => {
    const forged = { version: 1, callers: new Map() } as unknown as AccessPolicy;
    expect(isAccessPolicy(forged)).toBe(false);
    expect(isAccessPolicy(EXAMPLE)).toBe(false);
    expect(syncCodeOf(() => new AccessGate(forged))).toBe('invalid_access_policy');
    expect(syncCodeOf(() => new AccessGate(EXAMPLE as unknown as AccessPolicy))).toBe('invalid_access_policy');
  });

  it('enforces its private copy: changing the returned view changes nothing', () => {
    const parsed = policy({ a: { allow: { e: ['x'] } } });
    const gate = new AccessGate(parsed);
    (parsed.callers.get('a')!.allow as Map<string, unknown>).set('e', '*');
    (parsed.callers as Map<string, unknown>).set('b', parsed.callers.get('a'));
    expect(syncCodeOf(() => gate.admit('a', 'e', 'y'))).toBe('denied');
    expect(syncCodeOf(() => gate.admit('b', 'e', 'x'))).toBe('unauthorized');
  });

  it.each([
    ['empty', ''],
    ['129 characters', 'a'.repeat(129)],
    ['10 MB', 'a'.repeat(10_000_000)],
    ['a space', 'bill ing'],
    ['a NUL', 'billing\u0000'],
    ['a newline', 'billing\n'],
    ['a bidi control', '\u202ebilling'],
    ['non-ASCII', 'bïlling'],
    ['"*" itself', '*'],
  ])('refuses a malformed caller id (%s) unauthorized, even with a "*" entry', (_name, caller) => {
    const gate = new AccessGate(parseAccessPolicy(EXAMPLE));
    const error = refusal(() => gate.admit(caller, 'echo', 'echo'));
    expect(error.code).toBe('unauthorized');
    expect(error.message).not.toContain(caller.slice(0, 20) || '\u0000');
  });

  it('refuses a caller id that is not a string unauthorized, without calling into it', () => {
    const gate = new AccessGate(parseAccessPolicy(EXAMPLE));
    const hostile = { toString: () => { throw new Error('called'); } };
    for (const caller of [undefined, null, 5, hostile, ['billing']]) {
      expect(syncCodeOf(() => gate.admit(caller as unknown as string, 'echo', 'echo'))).toBe('unauthorized');
    }
  });

  it('refuses an unknown caller unauthorized when there is no "*" entry', () => {
    const gate = new AccessGate(policy({ billing: { allow: { echo: '*' } } }));
    for (const caller of ['other', '__proto__', 'constructor', 'hasOwnProperty', 'toString', 'billing2', 'Billing']) {
      expect(syncCodeOf(() => gate.admit(caller, 'echo', 'echo'))).toBe('unauthorized');
    }
  });

  it('treats "__proto__", "constructor" and "hasOwnProperty" as ordinary callers under "*"', () => {
    const gate = new AccessGate(policy({ billing: { allow: { signer: '*' } }, '*': { allow: { echo: ['echo'] } } }));
    for (const caller of ['__proto__', 'constructor', 'hasOwnProperty', 'valueOf']) {
      expect(gate.admit(caller, 'echo', 'echo')).toBe(1);
      expect(syncCodeOf(() => gate.admit(caller, 'signer', 'sign'))).toBe('denied');
    }
  });

  it('a "*" caller without limits has its id format checked once, the accepted set unchanged', () => {
    const gate = new AccessGate(policy({ billing: { allow: { signer: '*' } }, '*': { allow: { echo: ['echo'] } } }));
    const test = vi.spyOn(RegExp.prototype, 'test');
    try {
      expect(gate.admit('tenant-1', 'echo', 'echo')).toBe(1);
      const first = test.mock.calls.length;
      expect(first).toBeGreaterThan(0);
      for (let i = 0; i < 5; i++) expect(gate.admit('tenant-1', 'echo', 'echo')).toBe(1);
      // Remembered once allowed: the later calls run no regex (~60-120 ns each).
      expect(test.mock.calls.length).toBe(first);
      // A refused call is not remembered: its id is checked again next time.
      expect(syncCodeOf(() => gate.admit('tenant-2', 'signer', 'sign'))).toBe('denied');
      const refused = test.mock.calls.length;
      expect(syncCodeOf(() => gate.admit('tenant-2', 'signer', 'sign'))).toBe('denied');
      expect(test.mock.calls.length).toBeGreaterThan(refused);
    } finally {
      test.mockRestore();
    }
    // The same ids accepted as the regex accepts, every character: before and after being seen.
    const CALLER_ID = /^[A-Za-z0-9._:@/-]{1,128}$/;
    for (let code = 0; code < 0x10000; code++) {
      const id = `a${String.fromCharCode(code)}`;
      for (let round = 0; round < 2; round++) {
        const accepted = (() => {
          try {
            gate.admit(id, 'echo', 'echo');
            return true;
          } catch {
            return false;
          }
        })();
        expect(accepted).toBe(CALLER_ID.test(id));
      }
    }
    // Bounded as the buckets are: 20 000 distinct ids later, a malformed one is still refused.
    for (let i = 0; i < 2 * ACCESS_POLICY_LIMITS.wildcardCallers; i++) gate.admit(`t${i}`, 'echo', 'echo');
    expect(syncCodeOf(() => gate.admit('bad id', 'echo', 'echo'))).toBe('unauthorized');
  });

  it('keeps a named "constructor" caller to its own rules', () => {
    const gate = new AccessGate(policy({ constructor: { allow: { signer: ['sign'] }, weight: 7 } }));
    expect(gate.admit('constructor', 'signer', 'sign')).toBe(7);
    expect(syncCodeOf(() => gate.admit('hasOwnProperty', 'signer', 'sign'))).toBe('unauthorized');
  });

  it('refuses denied alike whether the enclave or op exists or not, revealing neither', () => {
    const gate = new AccessGate(policy({ billing: { allow: { signer: ['sign'] } } }));
    const names = [
      ['signer', 'public_key'], // exists, not allowed
      ['signer', 'no_such_op'],
      ['nothing', 'sign'],
      ['__proto__', 'sign'],
      ['constructor', 'sign'],
      ['signer', '__proto__'],
      ['signer', 'constructor'],
      ['signer', 'has'],
      ['s'.repeat(10_000_000), 'sign'],
      ['signer', 'o'.repeat(10_000_000)],
      ['signer\u0000', 'sign'],
      [undefined, 'sign'],
      ['signer', 5],
    ] as const;
    const messages = new Set<string>();
    for (const [enclave, op] of names) {
      const error = refusal(() => gate.admit('billing', enclave as unknown as string, op as unknown as string));
      expect(error.code).toBe('denied');
      messages.add(error.message);
    }
    expect(messages.size).toBe(1);
    const [message] = messages;
    expect(message).not.toMatch(/signer|sign|public_key|nothing/);
  });

  it('checks access before the limits: a denied call consumes no token', () => {
    const clock = fakeClock();
    const gate = new AccessGate(policy({ a: { allow: { e: ['x'] }, rate: { perSecond: 1, burst: 1 } } }), clock.now);
    for (let i = 0; i < 5; i++) expect(syncCodeOf(() => gate.admit('a', 'e', 'y'))).toBe('denied');
    expect(gate.admit('a', 'e', 'x')).toBe(1);
  });
});

describe('AccessGate.admitSession (host.endSession)', () => {
  it('admits a caller granted any op of the enclave; refuses others as admit does', () => {
    const gate = new AccessGate(parseAccessPolicy(EXAMPLE));
    expect(gate.admitSession('billing', 'signer')).toBe(2);
    expect(gate.admitSession('someone', 'echo')).toBe(1);
    // Running or not, granted to others or not: the same refusal.
    expect(refusal(() => gate.admitSession('billing', 'other')).message).toBe(refusal(() => gate.admit('billing', 'other', 'x')).message);
    expect(syncCodeOf(() => gate.admitSession('someone', 'signer'))).toBe('denied');
    expect(syncCodeOf(() => gate.admitSession('someone', '__proto__'))).toBe('denied');
    expect(syncCodeOf(() => gate.admitSession('someone', 'x'.repeat(10_000)))).toBe('denied');
    expect(syncCodeOf(() => gate.admitSession('bad id', 'echo'))).toBe('unauthorized');
    const strict = new AccessGate(policy({ a: { allow: { e: ['x'] } } }));
    expect(syncCodeOf(() => strict.admitSession('b', 'e'))).toBe('unauthorized');
  });

  it('consumes a token like a call', () => {
    const clock = fakeClock();
    const gate = new AccessGate(policy({ a: { allow: { e: ['x'] }, rate: { perSecond: 1, burst: 2 } } }), clock.now);
    gate.admitSession('a', 'e');
    gate.admit('a', 'e', 'x');
    expect(syncCodeOf(() => gate.admitSession('a', 'e'))).toBe('rate_limited');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
  });
});

describe('AccessGate: rate limits and quotas', () => {
  it('admits a burst, then refuses rate_limited until tokens refill at the rate', () => {
    const clock = fakeClock();
    const gate = new AccessGate(policy({ a: { allow: { e: '*' }, rate: { perSecond: 10, burst: 3 } } }), clock.now);
    for (let i = 0; i < 3; i++) gate.admit('a', 'e', 'x');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    clock.advance(99); // 0.99 token
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    clock.advance(1); // 1 token
    gate.admit('a', 'e', 'x');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    clock.advance(60_000); // refills to the burst, never past it
    for (let i = 0; i < 3; i++) gate.admit('a', 'e', 'x');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
  });

  it('takes nothing and gives nothing when the clock steps back', () => {
    const clock = fakeClock(10_000);
    const gate = new AccessGate(policy({ a: { allow: { e: '*' }, rate: { perSecond: 1, burst: 2 } } }), clock.now);
    gate.admit('a', 'e', 'x');
    clock.advance(-5_000);
    gate.admit('a', 'e', 'x'); // the second token is still there
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    clock.advance(5_000); // back where it was: the refill counts from the latest reading
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    clock.advance(1_000);
    gate.admit('a', 'e', 'x');
  });

  it('takes the time of the call from the caller when given, the clock otherwise', () => {
    let reads = 0;
    const gate = new AccessGate(policy({ a: { allow: { e: '*' }, rate: { perSecond: 1, burst: 1 } } }), () => {
      reads += 1;
      return 0;
    });
    reads = 0;
    gate.admit('a', 'e', 'x', 0);
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x', 999))).toBe('rate_limited');
    gate.admit('a', 'e', 'x', 1000);
    expect(reads).toBe(0);
    // Not a finite number: the clock's time (0 here: the bucket stays empty, not poisoned).
    for (const bad of [NaN, Infinity, -Infinity]) expect(syncCodeOf(() => gate.admit('a', 'e', 'x', bad))).toBe('rate_limited');
    expect(reads).toBe(3);
    gate.admit('a', 'e', 'x', 2000);
  });

  it('takes a fractional rate: 0.5 per second is one call every 2 s', () => {
    const clock = fakeClock();
    const gate = new AccessGate(policy({ a: { allow: { e: '*' }, rate: { perSecond: 0.5, burst: 1 } } }), clock.now);
    gate.admit('a', 'e', 'x');
    clock.advance(1999);
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    clock.advance(1);
    gate.admit('a', 'e', 'x');
  });

  it('rate_limited is retryable; quota_exceeded is not', () => {
    const clock = fakeClock();
    const gate = new AccessGate(
      policy({
        r: { allow: { e: '*' }, rate: { perSecond: 1, burst: 1 } },
        q: { allow: { e: '*' }, quota: { calls: 1, windowSeconds: 60 } },
      }),
      clock.now,
    );
    gate.admit('r', 'e', 'x');
    gate.admit('q', 'e', 'x');
    expect(refusal(() => gate.admit('r', 'e', 'x')).flags.retryable).toBe(true);
    const quota = refusal(() => gate.admit('q', 'e', 'x'));
    expect(quota.code).toBe('quota_exceeded');
    expect(quota.flags.retryable).toBe(false);
    expect(quota.message).toContain('the window ends in 60 s');
  });

  it('counts a quota in fixed windows: used up, refused, a new window admits again', () => {
    const clock = fakeClock();
    const gate = new AccessGate(policy({ a: { allow: { e: '*' }, quota: { calls: 2, windowSeconds: 10 } } }), clock.now);
    gate.admit('a', 'e', 'x');
    clock.advance(5_000);
    gate.admit('a', 'e', 'x');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('quota_exceeded');
    clock.advance(4_999); // still the first window (it started with the gate)
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('quota_exceeded');
    clock.advance(1);
    gate.admit('a', 'e', 'x');
    gate.admit('a', 'e', 'x');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('quota_exceeded');
    // Windows follow each other on a grid: 25 s later is 5 s into the window that started at 30 s... of the gate's time.
    clock.advance(25_000); // t = 35 s after start: window [30 s, 40 s)
    gate.admit('a', 'e', 'x');
    gate.admit('a', 'e', 'x');
    clock.advance(4_999);
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('quota_exceeded');
    clock.advance(1);
    gate.admit('a', 'e', 'x');
  });

  it('a refused call consumes nothing: rate_limited spends no quota, quota_exceeded no token', () => {
    const clock = fakeClock();
    const gate = new AccessGate(
      policy({ a: { allow: { e: '*' }, rate: { perSecond: 1, burst: 1 }, quota: { calls: 2, windowSeconds: 100 } } }),
      clock.now,
    );
    gate.admit('a', 'e', 'x'); // quota 1 of 2, bucket empty
    for (let i = 0; i < 10; i++) expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    clock.advance(1000);
    gate.admit('a', 'e', 'x'); // quota 2 of 2: the ten refusals spent none
    clock.advance(1000); // one token back
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('quota_exceeded');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('quota_exceeded');
    clock.advance(98_000); // new window; the token is still there, not spent by the refusals
    gate.admit('a', 'e', 'x');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
  });

  it('gives each caller under "*" a bucket of its own', () => {
    const clock = fakeClock();
    const gate = new AccessGate(parseAccessPolicy(EXAMPLE), clock.now);
    for (let i = 0; i < 5; i++) gate.admit('tenant-1', 'echo', 'echo');
    expect(syncCodeOf(() => gate.admit('tenant-1', 'echo', 'echo'))).toBe('rate_limited');
    for (let i = 0; i < 5; i++) gate.admit('tenant-2', 'echo', 'echo');
    expect(syncCodeOf(() => gate.admit('tenant-2', 'echo', 'echo'))).toBe('rate_limited');
    expect(gate.trackedWildcardCallers).toBe(2);
    // A named caller is not limited by "*".
    for (let i = 0; i < 100; i++) gate.admit('billing', 'echo', 'echo');
  });

  it('a caller without limits needs no bucket and no clock', () => {
    let reads = 0;
    const gate = new AccessGate(policy({ a: { allow: { e: '*' } }, '*': { allow: { e: '*' } } }), () => ++reads);
    const before = reads;
    for (let i = 0; i < 100; i++) {
      gate.admit('a', 'e', 'x');
      gate.admit(`u${i}`, 'e', 'x');
    }
    expect(reads).toBe(before);
    expect(gate.trackedWildcardCallers).toBe(0);
  });

  it('bounds the "*" buckets: id spraying keeps at most 10 000, the least recently seen forgotten first', () => {
    const clock = fakeClock();
    const gate = new AccessGate(policy({ '*': { allow: { e: '*' }, rate: { perSecond: 1, burst: 1 } } }), clock.now);
    const max = ACCESS_POLICY_LIMITS.wildcardCallers;
    gate.admit('recent', 'e', 'x'); // the first seen...
    gate.admit('old', 'e', 'x');
    for (let i = 0; i < max - 2; i++) gate.admit(`spray-${i}`, 'e', 'x');
    expect(gate.trackedWildcardCallers).toBe(max);
    // ...seen again (refused, but seen): it is now among the most recent, and 'old' the least.
    expect(syncCodeOf(() => gate.admit('recent', 'e', 'x'))).toBe('rate_limited');
    for (let i = 0; i < max / 2; i++) gate.admit(`spray-b-${i}`, 'e', 'x');
    expect(gate.trackedWildcardCallers).toBeLessThanOrEqual(max);
    expect(syncCodeOf(() => gate.admit('recent', 'e', 'x'))).toBe('rate_limited'); // kept its empty bucket
    gate.admit('old', 'e', 'x'); // forgotten: back with a full bucket (docs/ACCESS-POLICY.md)
    for (let i = 0; i < 3 * max; i++) {
      gate.admit(`spray-c-${i}`, 'e', 'x');
      if (gate.trackedWildcardCallers > max) throw new Error(`${gate.trackedWildcardCallers} buckets`);
    }
    expect(gate.trackedWildcardCallers).toBeGreaterThanOrEqual(max / 2);
    // A caller seen all along is never forgotten, however many others come.
    gate.admit('recent', 'e', 'x'); // forgotten during spray-c: a new bucket, now empty
    for (let i = 0; i < 3 * max; i++) {
      gate.admit(`spray-d-${i}`, 'e', 'x');
      if (i % 1000 === 0) expect(syncCodeOf(() => gate.admit('recent', 'e', 'x'))).toBe('rate_limited');
    }
  });

  it('creates no bucket for a call refused before the limits', () => {
    const gate = new AccessGate(policy({ '*': { allow: { e: ['x'] }, rate: { perSecond: 1, burst: 1 } } }), fakeClock().now);
    for (let i = 0; i < 100; i++) expect(syncCodeOf(() => gate.admit(`u${i}`, 'e', 'nope'))).toBe('denied');
    for (let i = 0; i < 100; i++) expect(syncCodeOf(() => gate.admit(`u ${i}`, 'e', 'x'))).toBe('unauthorized');
    expect(gate.trackedWildcardCallers).toBe(0);
  });
});

describe('AccessGate.reload', () => {
  const doc = (callers: Record<string, unknown>) => ({ version: 1, callers });
  const limited = (burst: number, extra: Record<string, unknown> = {}) => ({
    allow: { e: '*' },
    rate: { perSecond: 1, burst },
    ...extra,
  });

  it('keeps the bucket of a caller whose limits did not change: a reload resets nobody', () => {
    const clock = fakeClock();
    const gate = new AccessGate(parseAccessPolicy(doc({ a: limited(2), '*': limited(1) })), clock.now);
    gate.admit('a', 'e', 'x');
    gate.admit('a', 'e', 'x');
    gate.admit('u', 'e', 'x');
    // Same limits, other allow list and weight.
    gate.reload(parseAccessPolicy(doc({ a: { ...limited(2), allow: { e: ['x'], f: '*' }, weight: 5 }, '*': limited(1) })));
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    expect(syncCodeOf(() => gate.admit('u', 'e', 'x'))).toBe('rate_limited');
    clock.advance(1000);
    expect(gate.admit('a', 'e', 'x')).toBe(5);
  });

  it('keeps what a caller had when its limits change: tokens capped at the new burst, never refilled', () => {
    const clock = fakeClock();
    const gate = new AccessGate(parseAccessPolicy(doc({ a: limited(10), b: limited(10) })), clock.now);
    for (let i = 0; i < 10; i++) gate.admit('a', 'e', 'x'); // a: empty
    for (let i = 0; i < 2; i++) gate.admit('b', 'e', 'x'); // b: 8 left
    gate.reload(parseAccessPolicy(doc({ a: limited(100), b: limited(3) })));
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited'); // a raised burst does not refill
    for (let i = 0; i < 3; i++) gate.admit('b', 'e', 'x'); // b: capped at 3
    expect(syncCodeOf(() => gate.admit('b', 'e', 'x'))).toBe('rate_limited');
  });

  it('keeps the calls used in a quota window when the quota changes', () => {
    const clock = fakeClock();
    const q = (calls: number) => ({ allow: { e: '*' }, quota: { calls, windowSeconds: 60 } });
    const gate = new AccessGate(parseAccessPolicy(doc({ a: q(3) })), clock.now);
    for (let i = 0; i < 3; i++) gate.admit('a', 'e', 'x');
    gate.reload(parseAccessPolicy(doc({ a: q(4) })));
    gate.admit('a', 'e', 'x'); // 4 of 4
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('quota_exceeded');
    gate.reload(parseAccessPolicy(doc({ a: q(2) })));
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('quota_exceeded');
    clock.advance(60_000);
    gate.admit('a', 'e', 'x');
  });

  it('starts a limit that did not exist before full', () => {
    const clock = fakeClock();
    const gate = new AccessGate(parseAccessPolicy(doc({ a: { allow: { e: '*' } } })), clock.now);
    for (let i = 0; i < 50; i++) gate.admit('a', 'e', 'x');
    gate.reload(parseAccessPolicy(doc({ a: limited(2) })));
    gate.admit('a', 'e', 'x');
    gate.admit('a', 'e', 'x');
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
  });

  it('takes access away from a removed caller at once', () => {
    const gate = new AccessGate(parseAccessPolicy(doc({ a: { allow: { e: '*' } }, b: { allow: { e: '*' } } })));
    gate.admit('a', 'e', 'x');
    gate.reload(parseAccessPolicy(doc({ b: { allow: { e: '*' } } })));
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('unauthorized');
    gate.reload(parseAccessPolicy(doc({ b: { allow: { f: '*' } } })));
    expect(syncCodeOf(() => gate.admit('b', 'e', 'x'))).toBe('denied');
  });

  it('carries a caller moving between a name and "*" with its state', () => {
    const clock = fakeClock();
    const gate = new AccessGate(parseAccessPolicy(doc({ a: limited(2), '*': limited(2) })), clock.now);
    gate.admit('a', 'e', 'x');
    gate.admit('a', 'e', 'x');
    gate.admit('u', 'e', 'x');
    gate.admit('u', 'e', 'x');
    // 'a' now falls under '*', 'u' is named: both with the same limits, both still empty.
    gate.reload(parseAccessPolicy(doc({ u: limited(2), '*': limited(2) })));
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    expect(syncCodeOf(() => gate.admit('u', 'e', 'x'))).toBe('rate_limited');
    // Other limits: still what they had (nothing), within the new ones.
    gate.reload(parseAccessPolicy(doc({ a: limited(5), '*': limited(5) })));
    expect(syncCodeOf(() => gate.admit('a', 'e', 'x'))).toBe('rate_limited');
    expect(syncCodeOf(() => gate.admit('u', 'e', 'x'))).toBe('rate_limited');
  });

  it('leaves the policy in force when given something that is not a parsed policy', () => {
    const gate = new AccessGate(parseAccessPolicy(doc({ a: { allow: { e: '*' } } })));
    expect(syncCodeOf(() => gate.reload(doc({}) as unknown as AccessPolicy))).toBe('invalid_access_policy');
    gate.admit('a', 'e', 'x');
  });
});

describe('SessionSequences', () => {
  it('refuses an op before what it requires succeeded in the session, naming the missing op', () => {
    const seq = new SessionSequences();
    const error = refusal(() => seq.check('k1', 'use', ['open']));
    expect(error.code).toBe('state');
    expect(error.message).toContain('"open"');
    seq.record('k1', 'open');
    seq.check('k1', 'use', ['open']);
    // Each requirement, in order: the first missing one is named.
    expect(refusal(() => seq.check('k1', 'sign', ['open', 'load', 'unlock'])).message).toContain('"load"');
    seq.check('k1', 'health', []);
  });

  it('keeps sessions apart, and forgets one that ended', () => {
    const seq = new SessionSequences();
    seq.record('a\u0000s1', 'open');
    expect(syncCodeOf(() => seq.check('b\u0000s1', 'use', ['open']))).toBe('state');
    expect(syncCodeOf(() => seq.check('a\u0000s2', 'use', ['open']))).toBe('state');
    seq.end('a\u0000s1');
    expect(syncCodeOf(() => seq.check('a\u0000s1', 'use', ['open']))).toBe('state');
  });

  it('a call without a session satisfies no requirement', () => {
    const seq = new SessionSequences();
    seq.record(undefined, 'open');
    expect(syncCodeOf(() => seq.check(undefined, 'use', ['open']))).toBe('state');
    seq.check(undefined, 'health', []);
  });

  it('handles hostile keys and op names as plain strings', () => {
    const seq = new SessionSequences();
    for (const key of ['__proto__', 'constructor', 'hasOwnProperty']) {
      expect(syncCodeOf(() => seq.check(key, 'use', ['__proto__']))).toBe('state');
      expect(syncCodeOf(() => seq.check(key, 'use', ['constructor']))).toBe('state');
      seq.record(key, 'constructor');
      seq.check(key, 'use', ['constructor']);
    }
    expect(syncCodeOf(() => seq.check('k'.repeat(1025), 'use', ['open']))).toBe('invalid_options');
    seq.record('k'.repeat(10_000_000), 'open');
    expect(seq.size).toBe(3);
  });

  it('bounds the sessions kept: the least recently used forgotten first, failing closed', () => {
    const seq = new SessionSequences(3);
    seq.record('s1', 'open');
    seq.record('s2', 'open');
    seq.record('s3', 'open');
    seq.check('s1', 'use', ['open']); // s1 now the most recent
    seq.record('s4', 'open'); // forgets s2
    expect(seq.size).toBe(3);
    expect(syncCodeOf(() => seq.check('s2', 'use', ['open']))).toBe('state');
    seq.check('s1', 'use', ['open']);
    seq.check('s3', 'use', ['open']);
    seq.check('s4', 'use', ['open']);
    expect(syncCodeOf(() => new SessionSequences(0))).toBe('invalid_options');
    expect(syncCodeOf(() => new SessionSequences(1.5))).toBe('invalid_options');
  });

  it("fair across groups: one group's many sessions push out only its own", () => {
    const group = (key: string): string => key.slice(0, key.indexOf('|') + 1);
    const seq = new SessionSequences(10, undefined, group);
    seq.record('alice|s1', 'open');
    for (let i = 0; i < 1000; i++) seq.record(`bob|x${i}`, 'open');
    expect(seq.size).toBe(10);
    seq.check('alice|s1', 'use', ['open']);
    // bob keeps his 9 most recent, in use order.
    seq.check('bob|x999', 'use', ['open']);
    seq.check('bob|x991', 'use', ['open']);
    expect(syncCodeOf(() => seq.check('bob|x990', 'use', ['open']))).toBe('state');
    // A group below its share (a new caller) still gets room: the least recent of all goes.
    seq.record('carol|c1', 'open');
    seq.check('carol|c1', 'use', ['open']);
    seq.check('alice|s1', 'use', ['open']);
    expect(seq.size).toBe(10);
    // Ending every session of a group leaves nothing of it.
    seq.end('carol|c1');
    seq.end('alice|s1');
    expect(seq.size).toBe(8);
  });

  it('records only the ops some op requires when built for a contract', () => {
    const ops = { open: { requires: [] }, use: { requires: ['open'] }, echo: { requires: [] }, close: { requires: ['open', 'use'] } };
    const seq = SessionSequences.forContract(ops, 10);
    for (let i = 0; i < 100; i++) seq.record(`s${i}`, 'echo'); // never required: no memory
    expect(seq.size).toBe(0);
    seq.record('s', 'open');
    seq.check('s', 'use', ops.use.requires);
    expect(refusal(() => seq.check('s', 'close', ops.close.requires)).message).toContain('"use"');
    seq.record('s', 'use');
    seq.check('s', 'close', ops.close.requires);
  });

  it('bounds the ops recorded per session', () => {
    const seq = new SessionSequences();
    for (let i = 0; i < 2000; i++) seq.record('s', `op${i}`);
    seq.check('s', 'x', ['op0', 'op1023']);
    expect(syncCodeOf(() => seq.check('s', 'x', ['op1024']))).toBe('state');
  });
});

describe('docs/access-policy.schema.json', () => {
  it('is what the zod schema generates', () => {
    const file = new URL('../docs/access-policy.schema.json', import.meta.url);
    const generated = `${JSON.stringify(accessPolicyJsonSchema(), null, 2)}\n`;
    if (process.env.ENCLAVE_WRITE_SCHEMA === '1') {
      mkdirSync(new URL('.', file), { recursive: true });
      writeFileSync(file, generated);
    }
    expect(readFileSync(file, 'utf8')).toBe(generated);
  });

  it('says what the parser enforces: closed objects, bounded numbers, the key patterns', () => {
    const schema = accessPolicyJsonSchema() as any;
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['version', 'callers']);
    const caller = schema.properties.callers.additionalProperties;
    expect(caller.additionalProperties).toBe(false);
    expect(new RegExp(schema.properties.callers.propertyNames.pattern).test('__proto__')).toBe(false);
    expect(new RegExp(schema.properties.callers.propertyNames.pattern).test('*')).toBe(true);
    expect(caller.properties.rate.properties.perSecond).toMatchObject({ exclusiveMinimum: 0, maximum: 1e6 });
    expect(caller.properties.weight).toMatchObject({ type: 'integer', minimum: 1, maximum: 100 });
  });
});
