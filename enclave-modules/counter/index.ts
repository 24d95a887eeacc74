// counter: state that lives across calls in one instance (and is lost when the instance is
// discarded: durable state belongs in sealed storage, docs/ABI.md §7).

import { Enclave, Value, Reply, ErrorCode } from "enclave/sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

// State first: AssemblyScript wants globals declared before the top-level code that registers the
// handlers using them.
let count: i64 = 0;

Enclave.op("incr", incr);
Enclave.op("get", get);
Enclave.op("reset", reset);

/** `{by?: int}` (default 1, at least 1): adds `by` and returns the new value. */
function incr(args: Value): Reply {
  if (!args.isNil() && !args.isMap()) return Reply.badRequest("args must be a map");
  const by = args.get("by");
  if (!by.isNil() && !by.isInt()) return Reply.badRequest("by must be an int");
  const n = by.intOr(1);
  if (n < 1) return Reply.badRequest("by must be at least 1");
  if (count > i64.MAX_VALUE - n) return Reply.err(ErrorCode.Limit, "counter would overflow");
  count += n;
  return Reply.ok(Value.int(count));
}

/** Returns the current value. */
function get(args: Value): Reply {
  return Reply.ok(Value.int(count));
}

/** Sets the value back to 0; returns nil. The contract requires one `incr` first. */
function reset(args: Value): Reply {
  count = 0;
  return Reply.ok();
}
