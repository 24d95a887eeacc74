// Worker isolation mode: the same behaviour and codes as in-process, plus deadlines, worker death
// and clean shutdown. Worker mode under vitest runs the compiled worker from dist/ (runtime/worker.ts).

import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileEnclave, createWorkerEnclave, EnclaveError, loadEnclave, type EnclaveHandle, type WorkerEnclave } from '../host/index.js';
import { fixture, SPIN_CONTRACT, SPIN_WAT, watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

const ECHO = new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url);
const COUNTER = new URL('../enclave-modules/counter/build/counter.wasm', import.meta.url);

/** `f` floods the log in an endless loop. */
const FLOOD_WAT = `(module
  (import "enclave" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x66))
      (then (loop $more (call $log (i32.const 1) (i32.const 0x2000) (i32.const 1024)) (br $more))))
    (i32.const 0x100)))`;

const worker = (deadlineMs = 2000) => ({ isolation: 'worker' as const, deadlineMs });
/** Unmetered, so an infinite loop runs until the deadline rather than out of fuel. */
const unmetered = (deadlineMs: number) => ({ ...worker(deadlineMs), metering: false });

describe('worker mode: hostile enclave at call time, same codes as in-process', () => {
  let bytes: Uint8Array;
  let inProcess: EnclaveHandle;
  let enclave: WorkerEnclave;
  beforeAll(async () => {
    bytes = await fixture('hostile');
    inProcess = await loadEnclave(bytes);
    enclave = await loadEnclave(bytes, worker());
  });
  afterAll(() => enclave?.close());

  const cases: [op: string, code: string][] = [
    ['ptr_oob', 'bad_reply'],
    ['huge_len', 'too_large'],
    ['span_oob', 'bad_reply'],
    ['desc_oob', 'bad_reply'],
    ['truncated', 'bad_reply'],
    ['ext', 'bad_reply'],
    ['nested', 'bad_reply'],
    ['weird_code', 'bad_reply'],
    ['x_not_envelope', 'bad_reply'],
    ['junk_after', 'bad_reply'],
    ['zero_reply', 'internal'],
    ['unreachable', 'trap'],
    ['bail', 'trap'],
    ['call_forever', 'stack_overflow'],
  ];
  for (const [op, code] of cases) {
    it(`${op} fails with ${code}, as in-process, and the next call succeeds`, async () => {
      expect(await codeOf(inProcess.call(op))).toBe(code);
      expect(await codeOf(enclave.call(op))).toBe(code);
      expect(await enclave.call('ok')).toBe('fine');
    });
  }

  for (const op of ['ptr_oob', 'span_oob', 'desc_oob']) {
    it(`${op} is caught by the bounds check itself, with the same message across the thread`, async () => {
      await expect(enclave.call(op)).rejects.toThrow(/outside enclave memory/);
    });
  }

  it('passes an enclave error through with its code and detail', async () => {
    const err = await enclave.call('refuse').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).code).toBe('denied');
    expect((err as EnclaveError).detail).toBe('no');
  });

  it('an allocator returning an out-of-bounds pointer fails with bad_reply, then recovers', async () => {
    await enclave.call('arm_alloc_oob');
    expect(await codeOf(enclave.call('ok'))).toBe('bad_reply');
    expect(await enclave.call('ok')).toBe('fine');
  });

  it('an allocator returning 0 fails with limit, and the instance is kept as in-process', async () => {
    const e = await loadEnclave(bytes, worker());
    try {
      await e.call('fail_alloc');
      expect(await codeOf(e.call('ok'))).toBe('limit');
      expect(await codeOf(e.call('unreachable'))).toBe('limit');
    } finally {
      await e.close();
    }
  });

  it('survives memory growth between calls', async () => {
    expect(await enclave.call('grow')).toBe('fine');
    expect(await enclave.call('ok')).toBe('fine');
  });

  it('caller-side checks run before the hop, with the in-process codes', async () => {
    expect(await codeOf(enclave.call('launch_missiles'))).toBe('unknown_op');
    expect(await codeOf(enclave.call(42 as unknown as string))).toBe('unknown_op');
    expect(await codeOf(enclave.call('ok', 'x'.repeat(20_000)))).toBe('too_large');
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = [deep];
    expect(await codeOf(enclave.call('ok', deep))).toBe('invalid_args');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(await codeOf(enclave.call('ok', cyclic))).toBe('invalid_args');
    expect(await codeOf(enclave.call('ok', new Date(0)))).toBe('invalid_args');
    expect(await enclave.call('ok')).toBe('fine');
  });

  it('enforces requires, and forgets what succeeded when the instance is discarded', async () => {
    const e = await loadEnclave(bytes, worker());
    try {
      expect(await codeOf(e.call('order'))).toBe('state');
      await e.call('ok');
      expect(await e.call('order')).toBe('fine');
      // A reply that is not an envelope discards the instance (in-process too): requires start over.
      expect(await codeOf(e.call('x_not_envelope'))).toBe('bad_reply');
      expect(await codeOf(e.call('order'))).toBe('state');
      await e.call('ok');
      expect(await codeOf(e.call('unreachable'))).toBe('trap');
      expect(await codeOf(e.call('order'))).toBe('state');
    } finally {
      await e.close();
    }
  });

  it('the same sequence gives the same codes in both modes', async () => {
    const ops = ['order', 'ok', 'order', 'x_not_envelope', 'order', 'ok', 'weird_code', 'order', 'unreachable', 'order'];
    const a = await loadEnclave(bytes);
    const b = await loadEnclave(bytes, worker());
    const run = async (e: EnclaveHandle) => {
      const out: string[] = [];
      for (const op of ops) out.push(await e.call(op).then(() => 'ok', (err: EnclaveError) => err.code));
      return out;
    };
    try {
      expect(await run(b)).toEqual(await run(a));
    } finally {
      await b.close();
    }
  });
});

describe('worker mode: deadlines', () => {
  let spin: Uint8Array;
  beforeAll(async () => {
    spin = await watModule(SPIN_WAT, SPIN_CONTRACT);
  });

  it('an infinite loop ends with timeout within its deadline, and the next call gets a fresh worker', async () => {
    const e = await loadEnclave(spin, unmetered(300));
    try {
      expect(await e.call('ok')).toBe('fine');
      const t0 = performance.now();
      expect(await codeOf(e.call('spin'))).toBe('timeout');
      const elapsed = performance.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(5000); // a hang guard, not a speed claim
      expect(await e.call('ok')).toBe('fine');
      // And again: a replaced worker can time out and be replaced in turn.
      expect(await codeOf(e.call('spin'))).toBe('timeout');
      expect(await e.call('ok')).toBe('fine');
    } finally {
      await e.close();
    }
  });

  it('serves another enclave while one spins', async () => {
    const a = await loadEnclave(spin, unmetered(500));
    const b = await loadEnclave(spin, unmetered(500));
    try {
      const order: string[] = [];
      const slow = a.call('spin').catch((err: EnclaveError) => order.push(`a:${err.code}`));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await b.call('ok')).toBe('fine');
      order.push('b:ok');
      await slow;
      expect(order).toEqual(['b:ok', 'a:timeout']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('queues concurrent calls on one enclave: each runs after the one before, timeouts included', async () => {
    const e = await loadEnclave(spin, unmetered(250));
    try {
      const results = await Promise.all(
        ['ok', 'spin', 'ok', 'launch', 'ok'].map((op) => e.call(op).then(String, (err: EnclaveError) => err.code)),
      );
      expect(results).toEqual(['fine', 'timeout', 'fine', 'unknown_op', 'fine']);
    } finally {
      await e.close();
    }
  });

  it('a start function that never returns fails the load with timeout', async () => {
    const wat = SPIN_WAT.replace('(func (export "enclave_abi_version")', '(func $s (loop $l (br $l))) (start $s) (func (export "enclave_abi_version")');
    const bytes = await watModule(wat, SPIN_CONTRACT);
    expect(await codeOf(loadEnclave(bytes, { isolation: 'worker', startDeadlineMs: 300, metering: false }))).toBe('timeout');
    // Metered, the start function runs out of fuel first, in both modes.
    expect(await codeOf(loadEnclave(bytes))).toBe('fuel_exhausted');
    expect(await codeOf(loadEnclave(bytes, { isolation: 'worker', startDeadlineMs: 5000 }))).toBe('fuel_exhausted');
  });

  it('metered (the default), an infinite loop ends with fuel_exhausted before the deadline, as in-process', async () => {
    const inProcess = await loadEnclave(spin);
    const e = await loadEnclave(spin, worker(5000));
    try {
      const inProcessStats = { fuel: 0 };
      const workerStats = { fuel: 0 };
      expect(await codeOf(inProcess.call('spin', undefined, { stats: inProcessStats }))).toBe('fuel_exhausted');
      expect(await codeOf(e.call('spin', undefined, { stats: workerStats }))).toBe('fuel_exhausted');
      expect(workerStats.fuel).toBe(inProcessStats.fuel);
      expect(await e.call('ok')).toBe('fine');
    } finally {
      await e.close();
    }
  });

  it('a log flood cannot exhaust the worker: lines are capped per call, the deadline ends the loop, the worker serves on', async () => {
    const bytes = await watModule(FLOOD_WAT, { ...SPIN_CONTRACT, capabilities: ['log'], ops: { ok: {}, flood: {} } });
    const lines: string[] = [];
    const e = await loadEnclave(bytes, {
      isolation: 'worker',
      capabilities: ['log'],
      deadlineMs: 400,
      metering: false, // so only the deadline ends the flood
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
      onLog: (_level, message) => lines.push(message),
    });
    try {
      expect(await codeOf(e.call('flood'))).toBe('timeout');
      expect(await e.call('ok')).toBe('fine');
      expect(lines.length).toBeLessThanOrEqual(257);
    } finally {
      await e.close();
    }
  });
});

describe('worker mode: state, sizes, logs, lifecycle', () => {
  it('keeps state across calls', async () => {
    const e = await loadEnclave(COUNTER, worker());
    try {
      expect(await e.call('get')).toBe(0);
      expect(await e.call('incr', { by: 2 })).toBe(2);
      expect(await e.call('incr', { by: 3 })).toBe(5);
      expect(await e.call('get')).toBe(5);
      expect(await e.call('reset')).toBe(null);
      expect(await e.call('get')).toBe(0);
    } finally {
      await e.close();
    }
  });

  it("state policies, sessions, endSession and each call's { stats } fuel behave as in-process", async () => {
    const bytes = new Uint8Array(await readFile(COUNTER));
    type Step = [op: string, args?: unknown, session?: string] | ['end', string];
    const run = async (e: EnclaveHandle & { endSession(s: string): boolean | Promise<boolean> }, steps: Step[]) => {
      const out: unknown[] = [];
      for (const [op, args, session] of steps) {
        const stats = { fuel: -1 };
        if (op === 'end') out.push(await e.endSession(args as string));
        else out.push(await e.call(op, args, session === undefined ? { stats } : { session, stats }).then((v) => v, (err: EnclaveError) => err.code));
        out.push(stats.fuel);
      }
      return out;
    };
    const plans: [Record<string, unknown>, Step[]][] = [
      [{ state: 'per-session' }, [['incr', { by: 2 }, 'a'], ['incr', { by: 5 }, 'b'], ['get', undefined, 'a'], ['end', 'a'], ['end', 'a'],
        ['get', undefined, 'a'], ['get', undefined, 'b'], ['get'], ['get', undefined, 'x'.repeat(300)], ['reset', undefined, 'c']]],
      [{ state: 'per-call' }, [['incr', { by: 2 }], ['get'], ['incr', { by: 1 }], ['get', undefined, 's'], ['reset']]],
      [{ state: 'persistent' }, [['incr', { by: 2 }], ['get'], ['get', undefined, 's'], ['reset'], ['get'], ['end', 's']]],
    ];
    for (const [options, steps] of plans) {
      const a = await loadEnclave(bytes, options);
      const b = await loadEnclave(bytes, { ...worker(), ...options });
      try {
        const expected = await run(a, steps);
        expect(await run(b, steps)).toEqual(expected);
        expect(expected.some((x) => typeof x === 'number' && x > 0)).toBe(true); // metered: fuel is counted
      } finally {
        await b.close();
      }
    }
  });

  it('echoes 64 KiB and 1 MiB through the shared buffer, bytes intact and not aliased', async () => {
    const e = await loadEnclave(ECHO, worker());
    try {
      for (const size of [65_536, 1_048_576]) {
        const payload = new Uint8Array(size);
        for (let i = 0; i < size; i++) payload[i] = (i * 31 + 7) & 0xff;
        const back = (await e.call('echo', payload)) as Uint8Array;
        expect(back.length).toBe(size);
        expect(Buffer.compare(back, payload)).toBe(0);
        expect(back.buffer).not.toBeInstanceOf(SharedArrayBuffer);
        const next = (await e.call('echo', 'after')) as string;
        expect(next).toBe('after');
        expect(Buffer.compare(back, payload)).toBe(0); // the next call did not change the earlier result
      }
      expect(await e.call('echo', { nested: [1, 'two', { three: 3 }] })).toEqual({ nested: [1, 'two', { three: 3 }] });
    } finally {
      await e.close();
    }
  });

  it('a request and a reply exactly at their limits pass, one byte over fails with too_large, as in-process', async () => {
    const bytes = new Uint8Array(await readFile(ECHO));
    // {op: "echo", args: bin16(n)} is 17 + n bytes; {ok: bin16(n)} is 7 + n.
    const n = 3000;
    const payload = new Uint8Array(n).fill(9);
    const outcome = async (policy: { requestBytes: number; replyBytes: number }) => {
      const codes: string[] = [];
      for (const options of [{ policy }, { ...worker(), policy }]) {
        const e = await loadEnclave(bytes, options);
        codes.push(
          await e.call('echo', payload).then(
            (v) => ((v as Uint8Array).length === n ? 'ok' : 'short'),
            (err: EnclaveError) => err.code,
          ),
        );
        await e.close();
      }
      return codes;
    };
    expect(await outcome({ requestBytes: 17 + n, replyBytes: 7 + n })).toEqual(['ok', 'ok']);
    expect(await outcome({ requestBytes: 16 + n, replyBytes: 7 + n })).toEqual(['too_large', 'too_large']);
    // The enclave's encoder refuses a reply over the limit (limit), or the host does (too_large).
    const over = await outcome({ requestBytes: 17 + n, replyBytes: 6 + n });
    expect(over[1]).toBe(over[0]);
    expect(['limit', 'too_large']).toContain(over[1]);
  });

  it('delivers enclave log lines to onLog after the call', async () => {
    const wat = FLOOD_WAT.replace(
      '(then (loop $more (call $log (i32.const 1) (i32.const 0x2000) (i32.const 1024)) (br $more)))',
      '(then (call $log (i32.const 2) (i32.const 0x300) (i32.const 5)))',
    ).replace('(func (export "enclave_abi_version")', '(data (i32.const 0x300) "hello") (func (export "enclave_abi_version")');
    const bytes = await watModule(wat, { ...SPIN_CONTRACT, capabilities: ['log'], ops: { ok: {}, flood: {} } });
    const lines: string[] = [];
    const e = await loadEnclave(bytes, { ...worker(), capabilities: ['log'], onLog: (level, message) => lines.push(`${level}:${message}`) });
    try {
      expect(await e.call('flood')).toBe('fine');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(lines).toEqual(['warn:hello']);
    } finally {
      await e.close();
    }
  });

  it('fails every call after close with closed, including one in flight', async () => {
    const e = await loadEnclave(await fixture('hostile'), worker());
    await e.close();
    expect(e.closed).toBe(true);
    expect(await codeOf(e.call('ok'))).toBe('closed');
    await e.close(); // idempotent

    const s = await loadEnclave(await watModule(SPIN_WAT, SPIN_CONTRACT), unmetered(5000));
    const inFlight = s.call('spin');
    const queued = s.call('ok');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const t0 = performance.now();
    await s.close();
    expect(await codeOf(inFlight)).toBe('closed');
    expect(await codeOf(queued)).toBe('closed');
    // Well before the 5 s deadline: close does not wait for the call it abandons.
    expect(performance.now() - t0).toBeLessThan(4000);
  });

  it('refuses bad worker options with invalid_options, and load-time failures keep their codes', async () => {
    const hostile = await fixture('hostile');
    expect(await codeOf(loadEnclave(hostile, { isolation: 'worker', deadlineMs: 0 }))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(hostile, { isolation: 'worker', deadlineMs: Number.NaN }))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(hostile, { isolation: 'worker', resourceLimits: { heap: 1 } as never }))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(hostile, { isolation: 'thread' as never }))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(hostile, { deadlineMs: 100 } as never))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(hostile, { isolation: 'worker', capabilities: ['root' as never] }))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(hostile, { isolation: 'worker', policy: { memoryPages: 1 } }))).toBe('memory_limit');
    const random = await watModule(SPIN_WAT.replace('(memory', '(import "enclave" "random" (func (param i32 i32) (result i32))) (memory'), {
      ...SPIN_CONTRACT,
      capabilities: ['random'],
    });
    expect(await codeOf(loadEnclave(random, { isolation: 'worker' }))).toBe('capability_denied');
    const trapStart = await watModule(SPIN_WAT.replace('(func (export "enclave_abi_version")', '(func $s unreachable) (start $s) (func (export "enclave_abi_version")'), SPIN_CONTRACT);
    expect(await codeOf(loadEnclave(trapStart, { isolation: 'worker' }))).toBe('trap');
  });

  it('creates several worker enclaves from one compiled module, with separate memories', async () => {
    const mod = await compileEnclave(await fixture('hostile'));
    const a = await createWorkerEnclave(mod, worker());
    const b = await createWorkerEnclave(mod, { deadlineMs: 2000 });
    try {
      expect(a.measurement).toBe(mod.measurement);
      expect(a.limits).toEqual(mod.create().limits);
      await a.call('arm_alloc_oob');
      expect(await b.call('ok')).toBe('fine');
      expect(await codeOf(a.call('ok'))).toBe('bad_reply');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  const run = promisify(execFile);
  const entry = fileURLToPath(new URL('../dist/host/index.js', import.meta.url));
  const script = (close: boolean) => `
    import { loadEnclave } from ${JSON.stringify(entry)};
    const e = await loadEnclave(${JSON.stringify(fileURLToPath(ECHO))}, { isolation: 'worker' });
    if ((await e.call('echo', 'hi')) !== 'hi') process.exit(3);
    ${close ? 'await e.close();' : ''}
    console.log('done');`;
  for (const close of [true, false]) {
    it(`a script that loads an enclave in worker mode ${close ? 'and closes it' : 'and leaves it idle'} exits`, async () => {
      const t0 = performance.now();
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script(close)], { timeout: 10_000 });
      expect(stdout.trim()).toBe('done');
      expect(performance.now() - t0).toBeLessThan(10_000);
    });
  }
});

describe('worker mode: regressions', () => {
  it('endSession between two calls does not lose what the first call settled (requires, as in-process)', async () => {
    const bytes = new Uint8Array(await readFile(COUNTER));
    for (const options of [{ state: 'persistent' }, { state: 'per-session' }] as const) {
      const session = options.state === 'per-session' ? { session: 'a' } : undefined;
      const a = await loadEnclave(bytes, options);
      const b = await loadEnclave(bytes, { ...worker(), ...options });
      try {
        for (const e of [a, b]) {
          await e.call('incr', { by: 1 }, session);
          await e.endSession('other');
          // `reset` requires `incr` to have succeeded on this instance: it has.
          expect(await e.call('reset', undefined, session)).toBe(null);
        }
      } finally {
        await b.close();
      }
    }
  });

  it('session ids that are not well-formed UTF-16 are refused in both modes, so two never share an instance', async () => {
    const bytes = new Uint8Array(await readFile(COUNTER));
    const a = await loadEnclave(bytes, { state: 'per-session' });
    const b = await loadEnclave(bytes, { ...worker(), state: 'per-session' });
    try {
      for (const e of [a, b]) {
        // Lone surrogates: distinct strings that UTF-8 would turn into the same bytes (U+FFFD).
        expect(await codeOf(e.call('incr', { by: 5 }, { session: '\uD800' }))).toBe('invalid_options');
        expect(await codeOf(e.call('get', undefined, { session: '\uDBFF' }))).toBe('invalid_options');
        expect(await e.endSession('\uD800')).toBe(false);
        expect(await e.call('get', undefined, { session: '\u{1F600}' })).toBe(0);
      }
    } finally {
      await b.close();
    }
  });

  it("a call that waits for a fresh worker sends its own request, not what another encoder wrote meanwhile", async () => {
    // `s...` spins; any other op replies {ok: args} by rewriting the request in place.
    const wat = `(module
      (memory (export "memory") 1 1)
      (func (export "enclave_abi_version") (result i32) (i32.const 1))
      (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
      (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
        (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x73)) (then (loop $spin (br $spin))))
        (i32.store8 offset=10 (local.get $p) (i32.const 0x81))
        (i32.store8 offset=11 (local.get $p) (i32.const 0xa2))
        (i32.store8 offset=12 (local.get $p) (i32.const 0x6f))
        (i32.store8 offset=13 (local.get $p) (i32.const 0x6b))
        (i32.store (i32.const 0x100) (i32.add (local.get $p) (i32.const 10)))
        (i32.store (i32.const 0x104) (i32.sub (local.get $l) (i32.const 10)))
        (i32.const 0x100)))`;
    const bytes = await watModule(wat, { ...SPIN_CONTRACT, name: 'echo-spin', ops: { echo: {}, spin: {} } });
    const a = await loadEnclave(bytes, unmetered(300));
    const b = await loadEnclave(bytes, { metering: false });
    try {
      expect(await a.call('echo', 'warm')).toBe('warm');
      expect(await codeOf(a.call('spin'))).toBe('timeout');
      // The next call on `a` encodes, then waits for a fresh worker; meanwhile another enclave encodes.
      const mine = a.call('echo', 'mine-mine');
      await new Promise((r) => setImmediate(r));
      expect(await b.call('echo', 'them-them')).toBe('them-them');
      expect(await mine).toBe('mine-mine');
    } finally {
      await a.close();
    }
  });
});
