/**
 * The access policy at the supervisor's boundary (issue 12 §4, docs/ACCESS-POLICY.md): which caller
 * may call which op of which enclave, at what rate and within what quota, and the contract's
 * `requires` order per session.
 *
 * The host does not authenticate anyone: the embedding service asserts a caller id on every call
 * (docs/THREAT-MODEL.md, "The supervisor's boundary"). What this file guarantees is that a caller
 * reaches only what the policy grants it, no faster than its rate and no more than its quota, and
 * that a refusal says nothing about what exists behind it.
 *
 * Every name that reaches {@link AccessGate.admit} is hostile (a caller id, an enclave name, an op
 * name: `__proto__`, 10 MB strings, control characters): lengths are bounded before any lookup,
 * lookups are in Maps, and nothing a caller sends becomes an object key, a message or a metric label.
 */
import { z } from 'zod';
import { EnclaveError, quoteInput, readBoundedFile } from '../../core/index.js';

/**
 * The one version of the document this host reads.
 * @example
 * const doc = { version: ACCESS_POLICY_VERSION, callers: {} };
 */
export const ACCESS_POLICY_VERSION = 1;

/**
 * The bounds of the policy document and of the gate's memory (docs/ACCESS-POLICY.md, "Bounds").
 * `wildcardCallers`: how many callers the `*` entry tracks a bucket for at once (an LRU).
 * @example
 * const tooMany = ids.length > ACCESS_POLICY_LIMITS.maxCallers; // then name fewer, cover the rest with '*'
 */
export const ACCESS_POLICY_LIMITS = Object.freeze({
  /** A policy file, or a document's JSON form, in bytes (UTF-16 units for a document). */
  maxBytes: 1024 * 1024,
  maxCallers: 10_000,
  maxEnclavesPerCaller: 1_000,
  maxOpsPerEnclave: 1_000,
  callerIdLength: 128,
  maxPerSecond: 1e6,
  maxBurst: 1e6,
  maxQuotaCalls: 1e12,
  /** 366 days. */
  maxWindowSeconds: 366 * 86_400,
  maxWeight: 100,
  wildcardCallers: 10_000,
});

/** A caller id as the host accepts it on a call. */
const CALLER_ID = /^[A-Za-z0-9._:@/-]{1,128}$/;
/**
 * A caller key in the document: a caller id or `*`, never `__proto__` (JSON tooling treats that key
 * inconsistently; zod's records skip it, so {@link parseAccessPolicy} refuses it itself too).
 */
const CALLER_KEY = /^(?!__proto__$)(?:\*|[A-Za-z0-9._:@/-]{1,128})$/;
/** An enclave name as `host.start` accepts it. */
const ENCLAVE_NAME = /^[a-z][a-z0-9-]{0,63}$/;
/** An op name as a contract declares it (runtime/contract.ts). */
const OP_NAME = /^[a-z_][a-z0-9_]{0,63}$/;
/** The longest enclave or op name: a longer one is in no policy, so it is refused before it is hashed. */
const MAX_NAME = 64;

// ---------------------------------------------------------------------------------------------
// The document's schema (published as docs/access-policy.schema.json, generated from this)
// ---------------------------------------------------------------------------------------------

/** An error message for a rule: "is required" for a missing field, else "must be <rule>". */
function must(rule: string) {
  return { error: (issue: { input?: unknown }) => (issue.input === undefined ? `is required (${rule})` : `must be ${rule}`) };
}

const L = ACCESS_POLICY_LIMITS;
const OP_LIST_RULE = `"*" or a list of 1..${L.maxOpsPerEnclave} distinct op names, each matching [a-z_][a-z0-9_]{0,63}`;

const opListSchema = z.union(
  [
    z.literal('*'),
    z
      .array(z.string().regex(OP_NAME, { error: 'must match [a-z_][a-z0-9_]{0,63}' }))
      .min(1, { error: `must be ${OP_LIST_RULE}` })
      .max(L.maxOpsPerEnclave, { error: `must be ${OP_LIST_RULE}` })
      .refine((ops) => new Set(ops).size === ops.length, { error: `must be ${OP_LIST_RULE}` })
      .meta({ uniqueItems: true }),
  ],
  must(OP_LIST_RULE),
);

const rateSchema = z
  .strictObject({
    perSecond: z.number(must(`a number > 0 and <= ${L.maxPerSecond}`)).gt(0).lte(L.maxPerSecond).meta({
      description: 'Tokens added per second (may be fractional: 0.5 is one call every 2 s).',
    }),
    burst: z.int(must(`an integer from 1 to ${L.maxBurst}`)).min(1).max(L.maxBurst).meta({
      description: 'The bucket size: calls admitted at once after a pause.',
    }),
  }, must('an object { perSecond, burst }'))
  .meta({ description: 'A token bucket: at most `burst` calls at once, refilled at `perSecond`. Absent: no rate limit.' });

const quotaSchema = z
  .strictObject({
    calls: z.int(must(`an integer from 1 to ${L.maxQuotaCalls}`)).min(1).max(L.maxQuotaCalls),
    windowSeconds: z.int(must(`an integer from 1 to ${L.maxWindowSeconds}`)).min(1).max(L.maxWindowSeconds),
  }, must('an object { calls, windowSeconds }'))
  .meta({ description: 'At most `calls` calls per fixed window of `windowSeconds`. Absent: no quota.' });

const allowSchema = z
  .record(z.string().regex(ENCLAVE_NAME, { error: 'must match [a-z][a-z0-9-]{0,63}' }), opListSchema, must('an object'))
  .refine((allow) => Object.keys(allow).length <= L.maxEnclavesPerCaller, {
    error: `must name at most ${L.maxEnclavesPerCaller} enclaves`,
  })
  .meta({
    maxProperties: L.maxEnclavesPerCaller,
    description: 'Enclave name -> the ops this caller may call on it ("*": every op). An enclave not named: none.',
  });

const callerSchema = z.strictObject(
  {
    allow: allowSchema,
    rate: rateSchema.optional(),
    quota: quotaSchema.optional(),
    weight: z
      .int(must(`an integer from 1 to ${L.maxWeight}`))
      .min(1)
      .max(L.maxWeight)
      .optional()
      .meta({ description: "The caller's share in the fair queue (default 1)." }),
  },
  must('an object { allow, rate?, quota?, weight? }'),
);

/**
 * The zod schema of the policy document: structure, field types and bounds. {@link parseAccessPolicy}
 * adds what JSON tooling cannot be trusted with: the key `__proto__` anywhere is refused (zod's
 * records, like many validators, skip it silently).
 * @internal The published form is docs/access-policy.schema.json ({@link accessPolicyJsonSchema}).
 * @example
 * accessPolicySchema.safeParse(JSON.parse(text)).success; // structure only: use parseAccessPolicy
 */
export const accessPolicySchema = z
  .strictObject(
    {
      version: z.literal(ACCESS_POLICY_VERSION, must('1')),
      callers: z
        .record(
          z.string().regex(CALLER_KEY, {
            error: `must be "*" or 1..${L.callerIdLength} characters of A-Z a-z 0-9 . _ : @ / - (not "__proto__")`,
          }),
          callerSchema,
          must('an object'),
        )
        .refine((callers) => Object.keys(callers).length <= L.maxCallers, { error: `must name at most ${L.maxCallers} callers` })
        .meta({
          maxProperties: L.maxCallers,
          description: 'Caller id -> what it may call. "*": every caller not named, each with its own bucket and quota.',
        }),
    },
    must('a JSON object { version, callers }'),
  )
  .meta({
    title: 'enclave access policy',
    description: 'Which caller may call which op of which enclave, with rate limits and quotas (docs/ACCESS-POLICY.md).',
  });

/**
 * The JSON Schema (draft 2020-12) of the policy document, generated from {@link accessPolicySchema}:
 * what docs/access-policy.schema.json holds (test/supervisor-access.test.ts keeps them equal).
 * @example
 * writeFileSync('docs/access-policy.schema.json', JSON.stringify(accessPolicyJsonSchema(), null, 2) + '\n');
 */
export function accessPolicyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(accessPolicySchema, { target: 'draft-2020-12' }) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// The parsed policy
// ---------------------------------------------------------------------------------------------

/** A token bucket: `burst` calls at once, refilled at `perSecond`. */
export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

/** At most `calls` calls in each fixed window of `windowSeconds`. */
export interface CallQuota {
  readonly calls: number;
  readonly windowSeconds: number;
}

/** What one caller (or `*`) may do. `allow`: enclave name -> the ops allowed, `'*'` for every op. */
export interface CallerPolicy {
  readonly allow: ReadonlyMap<string, ReadonlySet<string> | '*'>;
  readonly rate: RateLimit | undefined;
  readonly quota: CallQuota | undefined;
  /** The caller's weight in the fair queue, 1..100 (default 1). */
  readonly weight: number;
}

/**
 * A validated access policy ({@link parseAccessPolicy}, {@link readAccessPolicy}). Its fields are a
 * view for reading: the gate works from a private copy taken at parse time, so changing these Maps
 * changes nothing it enforces.
 */
export interface AccessPolicy {
  readonly version: 1;
  /** Caller id (or `'*'`) -> its policy. */
  readonly callers: ReadonlyMap<string, CallerPolicy>;
}

/** A caller's rule as the gate uses it; private to this file. */
interface Rule {
  /** Enclave -> allowed ops, `true` for every op. */
  readonly allow: Map<string, Set<string> | true>;
  readonly rate: { readonly perMs: number; readonly burst: number } | undefined;
  readonly quota: { readonly calls: number; readonly windowMs: number } | undefined;
  readonly weight: number;
  /** The limits in one string: equal strings, equal limits (a reload keeps the bucket as it is). */
  readonly limits: string;
}

interface Compiled {
  readonly named: Map<string, Rule>;
  readonly wildcard: Rule | undefined;
}

/** The private copy behind each policy this file built: only these reach a gate. */
const COMPILED = new WeakMap<AccessPolicy, Compiled>();

function invalid(message: string, cause?: unknown): never {
  throw new EnclaveError('invalid_access_policy', `Invalid access policy: ${message}.`, cause === undefined ? undefined : { cause });
}

/** Field names the schema fixes (safe to print bare); every other path segment came from the document. */
const FIELDS = new Set(['version', 'callers', 'allow', 'rate', 'quota', 'weight', 'perSecond', 'burst', 'calls', 'windowSeconds']);

/**
 * `callers["billing"].rate.burst`: a path into the document. The positions that hold a caller id
 * and an enclave name are document text, quoted ({@link quoteInput}); so is anything not a field.
 */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'the document';
  let text = '';
  path.forEach((segment, i) => {
    const isDocumentKey = (i === 1 && path[0] === 'callers') || (i === 3 && path[0] === 'callers' && path[2] === 'allow');
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (!isDocumentKey && typeof segment === 'string' && FIELDS.has(segment)) text += i === 0 ? segment : `.${segment}`;
    else text += `[${quoteInput(typeof segment === 'string' ? segment : String(segment))}]`;
  });
  return text;
}

/** The message of zod's first issue, in our words, with document text quoted. */
function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return `${where} has an unknown field ${quoteInput(issue.keys[0])}`;
    case 'invalid_key': {
      const key = issue.path[issue.path.length - 1];
      const what = issue.path.length === 2 ? 'caller id' : 'enclave name';
      const parent = formatPath(issue.path.slice(0, -1));
      return `${parent} has the ${what} ${quoteInput(String(key))}, which ${issue.issues[0]?.message ?? 'is not valid'}`;
    }
    default:
      return `${where} ${issue.message}`;
  }
}

/**
 * The document as plain JSON data: getters, `toJSON` and proxies run once, here, so what is
 * validated is what is used. A value JSON cannot hold (a cycle, a BigInt) is refused.
 */
function normalize(doc: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(doc);
  } catch (error) {
    invalid('the document cannot be written as JSON (a cycle, a BigInt, or a getter that throws)', error);
  }
  if (text === undefined) invalid('the document must be a JSON object { version, callers }');
  if (text.length > L.maxBytes) invalid(`the document is larger than ${L.maxBytes} characters as JSON`);
  return JSON.parse(text) as unknown;
}

/** Own keys named `__proto__` at the two levels whose keys are free text (callers, allow): zod skips them. */
function refuseProtoKeys(doc: { callers: Record<string, { allow: Record<string, unknown> }> }): void {
  const { callers } = doc;
  if (Object.hasOwn(callers, '__proto__')) invalid('callers has the caller id "__proto__", which is not allowed in a policy');
  for (const id of Object.keys(callers)) {
    if (Object.hasOwn(callers[id]!.allow, '__proto__')) {
      invalid(`callers[${quoteInput(id)}].allow has the enclave name "__proto__", which must match [a-z][a-z0-9-]{0,63}`);
    }
  }
}

type CallerDoc = z.infer<typeof callerSchema>;

function compileRule(entry: CallerDoc): { rule: Rule; view: CallerPolicy } {
  const allow = new Map<string, Set<string> | true>();
  const viewAllow = new Map<string, ReadonlySet<string> | '*'>();
  for (const [enclave, ops] of Object.entries(entry.allow)) {
    allow.set(enclave, ops === '*' ? true : new Set(ops));
    viewAllow.set(enclave, ops === '*' ? '*' : new Set(ops));
  }
  const rate = entry.rate === undefined ? undefined : Object.freeze({ perSecond: entry.rate.perSecond, burst: entry.rate.burst });
  const quota = entry.quota === undefined ? undefined : Object.freeze({ calls: entry.quota.calls, windowSeconds: entry.quota.windowSeconds });
  const weight = entry.weight ?? 1;
  const rule: Rule = {
    allow,
    rate: rate === undefined ? undefined : { perMs: rate.perSecond / 1000, burst: rate.burst },
    quota: quota === undefined ? undefined : { calls: quota.calls, windowMs: quota.windowSeconds * 1000 },
    weight,
    limits: `${rate?.perSecond ?? '-'}/${rate?.burst ?? '-'}/${quota?.calls ?? '-'}/${quota?.windowSeconds ?? '-'}`,
  };
  return { rule, view: Object.freeze({ allow: viewAllow, rate, quota, weight }) };
}

/**
 * Validates an access policy document (docs/ACCESS-POLICY.md) and returns it parsed and frozen. The
 * document is taken in its JSON form (getters and `toJSON` run once); fields not in the schema are
 * refused, and so is the key `__proto__`.
 * @throws {EnclaveError} `invalid_access_policy`, naming the first wrong field (document text quoted).
 * @example
 * const policy = parseAccessPolicy({
 *   version: 1,
 *   callers: { billing: { allow: { signer: ['sign'] }, rate: { perSecond: 50, burst: 100 } } },
 * });
 */
export function parseAccessPolicy(doc: unknown): AccessPolicy {
  const json = normalize(doc);
  const result = accessPolicySchema.safeParse(json);
  if (!result.success) invalid(describeIssue(result.error.issues[0]!));
  const valid = json as z.infer<typeof accessPolicySchema>;
  refuseProtoKeys(valid);

  const named = new Map<string, Rule>();
  const view = new Map<string, CallerPolicy>();
  let wildcard: Rule | undefined;
  for (const [id, entry] of Object.entries(valid.callers)) {
    const compiled = compileRule(entry);
    view.set(id, compiled.view);
    if (id === '*') wildcard = compiled.rule;
    else named.set(id, compiled.rule);
  }
  const policy: AccessPolicy = Object.freeze({ version: 1, callers: view });
  COMPILED.set(policy, { named, wildcard });
  return policy;
}

/**
 * True for a policy {@link parseAccessPolicy} or {@link readAccessPolicy} returned (what an
 * {@link AccessGate} accepts); false for a document, however well-formed.
 * @example
 * const policy = isAccessPolicy(value) ? value : parseAccessPolicy(value);
 */
export function isAccessPolicy(value: unknown): value is AccessPolicy {
  return typeof value === 'object' && value !== null && COMPILED.has(value as AccessPolicy);
}

/**
 * Reads and validates a policy file: a regular file of at most 1 MiB (core's `readBoundedFile`: a
 * FIFO or a device is refused, never waited on), UTF-8 JSON, then {@link parseAccessPolicy}.
 * @throws {EnclaveError} `invalid_access_policy`: the file cannot be read, is not a regular file, is
 *   larger than 1 MiB, is not UTF-8 JSON, or is not a valid policy.
 * @example
 * const policy = await readAccessPolicy('/etc/my-service/access.json');
 */
export async function readAccessPolicy(path: string | URL): Promise<AccessPolicy> {
  const name = quoteInput(String(path));
  const read = await readBoundedFile(path, L.maxBytes);
  switch (read.kind) {
    case 'not_regular':
      invalid(`${name} is not a regular file`);
    case 'too_large':
      invalid(`${name} is larger than ${L.maxBytes} bytes`);
    case 'errno':
      invalid(`${name} cannot be read (${read.code})`, read.error);
    case 'ok':
      break;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(read.bytes));
  } catch (error) {
    invalid(`${name} is not UTF-8 JSON (${quoteInput(error instanceof Error ? error.message : String(error))})`, error);
  }
  return parseAccessPolicy(doc);
}

// ---------------------------------------------------------------------------------------------
// A bounded map of recently seen keys
// ---------------------------------------------------------------------------------------------

/**
 * At most `max` entries, the ones seen least recently forgotten first, in two generations (as
 * sindresorhus/quick-lru does): new and touched keys go to the young one; when it holds half of
 * `max` it becomes the old one and the previous old one is dropped whole. A hit in the young
 * generation is one Map lookup: no reordering on the hot path (a Map delete + set on every hit
 * costs more than the whole rest of a call's admission, and churns the Map's table). A key is
 * forgotten after between `max / 2` and `max` other keys were added or touched since it was last seen.
 */
class RecentMap<V> {
  readonly #max: number;
  readonly #half: number;
  #young = new Map<string, V>();
  #old = new Map<string, V>();

  constructor(max: number) {
    this.#max = max;
    this.#half = Math.ceil(max / 2);
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** The value of `key`, made recent. */
  get(key: string): V | undefined {
    const young = this.#young.get(key);
    if (young !== undefined) return young;
    const old = this.#old.get(key);
    if (old !== undefined) {
      this.#old.delete(key);
      this.#add(key, old);
    }
    return old;
  }

  /** Adds a key that is not in the map (callers `get` first). */
  add(key: string, value: V): void {
    this.#add(key, value);
  }

  delete(key: string): void {
    if (!this.#young.delete(key)) this.#old.delete(key);
  }

  /** Every entry, least recent generation first. */
  entries(): [string, V][] {
    return [...this.#old, ...this.#young];
  }

  #add(key: string, value: V): void {
    if (this.#young.size >= this.#half) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    while (this.size >= this.#max && this.#old.size > 0) this.#old.delete(this.#old.keys().next().value!);
    this.#young.set(key, value);
  }
}

// ---------------------------------------------------------------------------------------------
// The gate
// ---------------------------------------------------------------------------------------------

/** One caller's limiter state: tokens of its bucket and calls used in its quota window. */
class Bucket {
  /** Tokens in the bucket when `last` was read. */
  tokens: number;
  /** The clock when `tokens` was last brought up to date (ms). */
  last: number;
  /** Calls counted in the current quota window. */
  used = 0;
  /** The current quota window's start (ms); windows follow each other from the first one. */
  windowStart: number;

  constructor(rule: Rule, now: number) {
    this.tokens = rule.rate?.burst ?? 0;
    this.last = now;
    this.windowStart = now;
  }

  /** Brings tokens and the quota window up to `now` under `rule`. */
  refresh(rule: Rule, now: number): void {
    const { rate, quota } = rule;
    if (rate !== undefined && now > this.last) {
      const tokens = this.tokens + (now - this.last) * rate.perMs;
      this.tokens = tokens > rate.burst ? rate.burst : tokens;
      this.last = now;
    }
    if (quota !== undefined && now - this.windowStart >= quota.windowMs) {
      this.windowStart += Math.floor((now - this.windowStart) / quota.windowMs) * quota.windowMs;
      this.used = 0;
    }
  }

}

/** A named caller in the gate: its rule and, when it has limits, its bucket. */
interface Named {
  readonly rule: Rule;
  readonly bucket: Bucket | undefined;
}

const hasLimits = (rule: Rule): boolean => rule.rate !== undefined || rule.quota !== undefined;

/**
 * `state`'s tokens and quota carried from `from` to `to` when limits changed on a reload: never
 * more than the caller had (tokens capped at the new burst; calls used in the window kept), so a
 * reload cannot refill anyone's bucket or quota. A limit that did not exist before starts full.
 */
function carry(state: Bucket | undefined, from: Rule | undefined, to: Rule, now: number): Bucket {
  const bucket = new Bucket(to, now);
  if (state === undefined || from === undefined) return bucket;
  state.refresh(from, now);
  if (to.rate !== undefined && from.rate !== undefined) bucket.tokens = Math.min(state.tokens, to.rate.burst);
  if (to.quota !== undefined && from.quota !== undefined) {
    bucket.used = state.used;
    bucket.windowStart = state.windowStart;
  }
  return bucket;
}

const RATE_LIMITED = 'This caller reached its rate limit in the access policy: retry after a pause, with backoff.';
const DENIED = 'The access policy does not allow this caller this operation.';
const BAD_CALLER = `The caller id is not valid: 1..${L.callerIdLength} characters of A-Z a-z 0-9 . _ : @ / -.`;

/**
 * The access check of every call through the host: caller id, allow list, rate limit, quota.
 *
 * Refusals, in this order: `unauthorized` (the caller id is malformed, or is not named and there is
 * no `*` entry), `denied` (the caller may not call this op of this enclave: the same whether or not
 * the enclave or the op exists), `quota_exceeded` (the window's calls are used up), `rate_limited`
 * (the bucket is empty). A refused call consumes nothing.
 *
 * Callers covered by `*` each get a bucket of their own, kept for at most the
 * {@link ACCESS_POLICY_LIMITS} `wildcardCallers` (10 000) most recently seen: one not seen while
 * 5 000 to 10 000 others arrived is forgotten, and comes back with a full bucket and a fresh quota
 * window (docs/ACCESS-POLICY.md, "Callers under *").
 *
 * @example
 * const gate = new AccessGate(parseAccessPolicy(doc));
 * const weight = gate.admit('billing', 'signer', 'sign'); // throws EnclaveError when refused
 */
export class AccessGate {
  readonly #clock: () => number;
  #named: Map<string, Named> = new Map();
  #wildcard: Rule | undefined;
  /** Buckets of the `*` callers that have limits, the most recently seen. */
  #wildcardBuckets = new RecentMap<Bucket>(L.wildcardCallers);
  /**
   * `*` callers without limits (no bucket to remember them by) whose id passed the format check
   * and who were then allowed a call, the most recently seen: a Map lookup (~25 ns measured) in
   * place of the regex (~60-120 ns) on their later calls. Bounded like the buckets; only ids
   * CALLER_ID accepted enter, so the accepted set is the regex's. Kept across reloads (an id's
   * format does not depend on the policy).
   */
  #wildcardIds = new RecentMap<true>(L.wildcardCallers);

  /**
   * @param policy - a parsed policy ({@link parseAccessPolicy}).
   * @param clock - milliseconds, monotonic; default `performance.now`.
   * @throws {EnclaveError} `invalid_access_policy` when `policy` is not one {@link parseAccessPolicy} returned.
   */
  constructor(policy: AccessPolicy, clock: () => number = () => performance.now()) {
    this.#clock = clock;
    this.#install(compiledOf(policy), undefined);
  }

  /** How many `*` callers have a bucket now (at most `wildcardCallers`). */
  get trackedWildcardCallers(): number {
    return this.#wildcardBuckets.size;
  }

  /**
   * Admits one call or refuses it. On admission, consumes one token and one quota unit of the
   * caller's and returns its fair-queue weight.
   * @param now - the time of the call on the gate's clock (ms), when the caller has read it
   *   already: a clock read is the costliest step of an admission with limits. Default: the clock.
   * @throws {EnclaveError} `unauthorized`, `denied`, `quota_exceeded`, `rate_limited` (see the class).
   * @example
   * const weight = gate.admit(caller, 'signer', 'sign');
   */
  admit(caller: string, enclave: string, op: string, now?: number): number {
    return this.#admit(caller, enclave, op, now);
  }

  /**
   * Admits an action on one of the caller's sessions of `enclave` (ending it): allowed when the
   * policy grants the caller at least one op of `enclave`, refused exactly as {@link AccessGate.admit}
   * refuses a call otherwise (so it reveals nothing either), and it consumes one token and one quota
   * unit like a call (it reaches the enclave).
   * @throws {EnclaveError} `unauthorized`, `denied`, `quota_exceeded`, `rate_limited` (see the class).
   * @example
   * gate.admitSession(caller, 'signer'); // before host.endSession reaches anything
   */
  admitSession(caller: string, enclave: string, now?: number): number {
    return this.#admit(caller, enclave, undefined, now);
  }

  /** `op` undefined: any op of `enclave` granted is enough. */
  #admit(caller: string, enclave: string, op: string | undefined, now: number | undefined): number {
    // A named caller's id was validated with the policy: one Map lookup, after a length check so a
    // 10 MB string is not hashed.
    if (typeof caller !== 'string' || caller.length === 0 || caller.length > L.callerIdLength) {
      throw new EnclaveError('unauthorized', BAD_CALLER);
    }
    const named = this.#named.get(caller);
    let rule: Rule;
    let bucket: Bucket | undefined;
    /** A `*` caller without limits seen before (its id checked then). */
    let known = false;
    if (named !== undefined) {
      rule = named.rule;
      bucket = named.bucket;
    } else {
      const wildcard = this.#wildcard;
      // An id that has a bucket passed this check when the bucket was made: the format check
      // (the costlier step) runs once per `*` caller, not on every call.
      bucket = wildcard === undefined ? undefined : this.#wildcardBuckets.get(caller);
      if (bucket === undefined) {
        known = this.#wildcardIds.get(caller) !== undefined;
        if (!known && !CALLER_ID.test(caller)) throw new EnclaveError('unauthorized', BAD_CALLER);
      }
      if (wildcard === undefined) throw new EnclaveError('unauthorized');
      rule = wildcard;
    }
    // Same refusal for an enclave or op that does not exist and one that is not allowed.
    if (typeof enclave !== 'string' || enclave.length > MAX_NAME || (op !== undefined && (typeof op !== 'string' || op.length > MAX_NAME))) {
      throw new EnclaveError('denied', DENIED);
    }
    const ops = rule.allow.get(enclave);
    if (ops === undefined || (op !== undefined && ops !== true && !ops.has(op))) throw new EnclaveError('denied', DENIED);
    if (rule.rate === undefined && rule.quota === undefined) {
      // Remembered once allowed, as a bucket is: refused calls leave nothing behind.
      if (named === undefined && !known) this.#wildcardIds.add(caller, true);
      return rule.weight;
    }

    // A time that is not a finite number would poison the bucket's arithmetic for good: read the clock.
    if (now === undefined || !Number.isFinite(now)) now = this.#clock();
    if (bucket === undefined) {
      // A `*` caller's first allowed call (or its first since it was forgotten): its bucket now.
      bucket = new Bucket(rule, now);
      this.#wildcardBuckets.add(caller, bucket);
    }
    bucket.refresh(rule, now);
    const { rate, quota } = rule;
    if (quota !== undefined && bucket.used >= quota.calls) {
      const seconds = Math.ceil((bucket.windowStart + quota.windowMs - now) / 1000);
      throw new EnclaveError(
        'quota_exceeded',
        `This caller used up its call quota in the access policy: the window ends in ${seconds} s.`,
      );
    }
    if (rate !== undefined) {
      if (bucket.tokens < 1) throw new EnclaveError('rate_limited', RATE_LIMITED);
      bucket.tokens -= 1;
    }
    if (quota !== undefined) bucket.used += 1;
    return rule.weight;
  }

  /**
   * Puts a new policy in force at once. A caller whose limits did not change keeps its bucket and
   * quota window as they are; one whose limits changed keeps what it had, within the new limits
   * (tokens capped at the new burst, calls used in the window still counted): a reload never
   * refills a bucket nor resets a quota. A caller no longer named loses its access with the next
   * call (`unauthorized`, or the `*` entry's access); calls already admitted are not recalled.
   * @throws {EnclaveError} `invalid_access_policy` when `policy` is not one {@link parseAccessPolicy} returned.
   * @example
   * gate.reload(await readAccessPolicy(path));
   */
  reload(policy: AccessPolicy): void {
    this.#install(compiledOf(policy), this.#clock());
  }

  /** Builds the gate's state for `compiled`, carrying buckets from the current one (`now` set: a reload). */
  #install(compiled: Compiled, now: number | undefined): void {
    const at = now ?? this.#clock();
    const oldNamed = this.#named;
    const oldWildcard = this.#wildcard;
    const oldBuckets = new Map(this.#wildcardBuckets.entries());
    /** A caller's current state and the rule it was kept under. */
    const previous = (id: string): { bucket: Bucket | undefined; rule: Rule | undefined } => {
      const was = oldNamed.get(id);
      if (was !== undefined) return { bucket: was.bucket, rule: was.rule };
      return { bucket: oldBuckets.get(id), rule: oldWildcard };
    };
    const bucketFor = (id: string, rule: Rule): Bucket | undefined => {
      if (!hasLimits(rule)) return undefined;
      const { bucket, rule: from } = previous(id);
      if (bucket !== undefined && from !== undefined && from.limits === rule.limits) return bucket;
      return carry(bucket, from, rule, at);
    };

    const named = new Map<string, Named>();
    for (const [id, rule] of compiled.named) named.set(id, { rule, bucket: bucketFor(id, rule) });

    const buckets = new RecentMap<Bucket>(L.wildcardCallers);
    const wildcard = compiled.wildcard;
    if (wildcard !== undefined && hasLimits(wildcard)) {
      // Least recent first, as they were; then callers that were named and now fall under `*`.
      const ids = [...oldBuckets.keys(), ...[...oldNamed.keys()].filter((id) => !oldBuckets.has(id))];
      for (const id of ids) {
        if (named.has(id)) continue;
        const bucket = bucketFor(id, wildcard);
        if (bucket !== undefined) buckets.add(id, bucket);
      }
    }
    this.#named = named;
    this.#wildcard = wildcard;
    this.#wildcardBuckets = buckets;
  }
}

function compiledOf(policy: AccessPolicy): Compiled {
  const compiled = isAccessPolicy(policy) ? COMPILED.get(policy) : undefined;
  if (compiled === undefined) invalid('not a parsed policy: pass the document through parseAccessPolicy or readAccessPolicy first');
  return compiled;
}

// ---------------------------------------------------------------------------------------------
// Sequences
// ---------------------------------------------------------------------------------------------

/**
 * At most `max` entries, each in a group (the host's groups: one enclave's sessions of one caller),
 * least recently used first within the whole and within each group (Maps in use order: a touch is
 * a delete and a set). When full, a new entry whose group already holds its fair share
 * (`max / groups`) pushes out its own group's least recent entry; only a group below its share
 * pushes out the least recent entry of all. So one caller opening sessions without end forgets
 * only its own: another caller's session is forgotten only by traffic from groups smaller than
 * their share (many callers each with a few sessions).
 * @internal The host's per-member sessions use it too (host.ts).
 * @example
 * const live = new FairRecentMap<true>(64, (key) => key.slice(0, key.indexOf('|') + 1));
 * const pushedOut = live.add('alice|s1', true); // undefined until full
 */
export class FairRecentMap<V> {
  readonly #max: number;
  readonly #groupOf: (key: string) => string;
  /** key -> [its group, value], least recent first. */
  readonly #all = new Map<string, { readonly group: string; readonly value: V }>();
  /** group -> its keys, least recent first. */
  readonly #groups = new Map<string, Set<string>>();

  constructor(max: number, groupOf: (key: string) => string) {
    this.#max = max;
    this.#groupOf = groupOf;
  }

  get size(): number {
    return this.#all.size;
  }

  /** The value of `key`, made the most recent. */
  get(key: string): V | undefined {
    const entry = this.#all.get(key);
    if (entry === undefined) return undefined;
    this.#all.delete(key);
    this.#all.set(key, entry);
    const keys = this.#groups.get(entry.group)!;
    keys.delete(key);
    keys.add(key);
    return entry.value;
  }

  /** Adds a key that is not in the map (callers `get` first); returns the key it pushed out, if any. */
  add(key: string, value: V): string | undefined {
    const group = this.#groupOf(key);
    let keys = this.#groups.get(group);
    let victim: string | undefined;
    if (this.#all.size >= this.#max) {
      const groups = this.#groups.size + (keys === undefined ? 1 : 0);
      const share = Math.ceil(this.#max / groups);
      victim = keys !== undefined && keys.size >= share ? keys.values().next().value! : this.#all.keys().next().value!;
      this.delete(victim);
      keys = this.#groups.get(group);
    }
    if (keys === undefined) {
      keys = new Set();
      this.#groups.set(group, keys);
    }
    keys.add(key);
    this.#all.set(key, { group, value });
    return victim;
  }

  delete(key: string): void {
    const entry = this.#all.get(key);
    if (entry === undefined) return;
    this.#all.delete(key);
    const keys = this.#groups.get(entry.group)!;
    keys.delete(key);
    if (keys.size === 0) this.#groups.delete(entry.group);
  }
}


/** The longest key {@link SessionSequences} keeps: a caller id (128) and a session id (256), with room. */
const MAX_SEQUENCE_KEY = 1024;
/** How many distinct ops one key records when no tracked set bounds it. */
const MAX_OPS_PER_SESSION = 1024;

/**
 * The contract's `requires` order per session, enforced before a call crosses: an op that requires
 * others runs only after each of them succeeded in the same session (the key: the host makes it from
 * caller and session, so one caller's session never satisfies another's).
 *
 * Memory is bounded: at most `maxSessions` keys (the least recently used forgotten first, fairly
 * across groups: a group holding its share forgets its own first, see `groupOf`) and, per key,
 * at most the tracked ops (or 1024). A forgotten session fails closed: its ops that require others
 * are refused `state` until it runs them again.
 *
 * @example
 * const seq = SessionSequences.forContract(contract.ops);
 * seq.check(key, 'use', contract.ops.use.requires); // EnclaveError 'state' before 'open' succeeded
 * seq.record(key, 'open');
 */
export class SessionSequences {
  readonly #tracked: ReadonlySet<string> | undefined;
  readonly #maxOps: number;
  /** key -> ops that succeeded in it, for the most recently used keys (fair across groups). */
  readonly #done: FairRecentMap<Set<string>>;

  /**
   * @param maxSessions - keys kept at once (default 10 000), an integer >= 1.
   * @param tracked - the ops worth recording (those some op requires): others are not recorded,
   *   so sessions that never use an ordered op cost nothing. Default: every op, 1024 per key at most.
   * @param groupOf - the group of a key (the host: its enclave and caller). When full, a group at
   *   or above its fair share forgets its own least recent key, so one caller's many sessions
   *   never push out another's. Default: one group (least recently used of all forgotten first).
   * @throws {EnclaveError} `invalid_options` for a `maxSessions` that is not an integer >= 1.
   */
  constructor(maxSessions = 10_000, tracked?: Iterable<string>, groupOf: (key: string) => string = () => '') {
    if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
      throw new EnclaveError('invalid_options', 'maxSessions must be an integer >= 1.');
    }
    this.#done = new FairRecentMap(maxSessions, groupOf);
    this.#tracked = tracked === undefined ? undefined : new Set(tracked);
    this.#maxOps = this.#tracked?.size ?? MAX_OPS_PER_SESSION;
  }

  /**
   * Sequences for a contract's ops: tracks exactly the ops some op requires.
   * @throws {EnclaveError} `invalid_options` for a bad `maxSessions`.
   * @example
   * const seq = SessionSequences.forContract(mod.contract.ops);
   */
  static forContract(ops: Readonly<Record<string, { readonly requires: readonly string[] }>>, maxSessions?: number): SessionSequences {
    const tracked = new Set<string>();
    for (const name of Object.keys(ops)) for (const required of ops[name]!.requires) tracked.add(required);
    return new SessionSequences(maxSessions, tracked);
  }

  /** How many keys are kept now. */
  get size(): number {
    return this.#done.size;
  }

  /**
   * Refuses `op` unless every op of `requires` succeeded in this session. No key (a call without a
   * session) satisfies no requirement.
   * @throws {EnclaveError} `state`, naming the first missing op; `invalid_options` for a key longer than 1024.
   * @example
   * seq.check(`${caller}\u0000${session}`, 'use', ['open']);
   */
  check(key: string | undefined, op: string, requires: readonly string[]): void {
    const count = requires.length;
    if (count === 0) return;
    if (key !== undefined && key.length > MAX_SEQUENCE_KEY) throw new EnclaveError('invalid_options', 'The session id is too long.');
    const done = key === undefined ? undefined : this.#done.get(key);
    for (let i = 0; i < count; i++) {
      const required = requires[i]!;
      if (done === undefined || !done.has(required)) {
        throw new EnclaveError(
          'state',
          `${quoteInput(op)} requires ${quoteInput(required)} to have succeeded first in the same session.`,
        );
      }
    }
  }

  /**
   * Records that `op` succeeded in this session. An op not tracked, a missing key or one longer than
   * 1024 records nothing (the next `check` that needs it refuses: fail closed).
   * @example
   * seq.record(key, 'open');
   */
  record(key: string | undefined, op: string): void {
    if (key === undefined || key.length > MAX_SEQUENCE_KEY) return;
    if (this.#tracked !== undefined && !this.#tracked.has(op)) return;
    let done = this.#done.get(key);
    if (done === undefined) {
      done = new Set();
      this.#done.add(key, done);
    }
    if (done.size < this.#maxOps) done.add(op);
  }

  /**
   * Forgets a session (it ended).
   * @example
   * seq.end(key);
   */
  end(key: string): void {
    this.#done.delete(key);
  }
}
