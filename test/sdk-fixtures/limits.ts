// Test fixture for the SDK (compiled by test/sdk-limits.test.ts into test/sdk-fixtures/build/).
// Small limits, and ops that push the reply path to its edges.

import { Enclave, Value, Reply, ErrorCode, randomBytes } from "enclave/sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";
// The SDK's internals, by their path in the package (tests only): limits changed at run time.
import { setLimitsImpl } from "enclave/enclave-modules/sdk/limits";

let kept: Value = Value.nil();
let keptView: Value = Value.nil();

// A module's limits are its contract's, given by enclave build; this fixture has no contract.
setLimitsImpl(256, 128, 4, 4);
Enclave.op("big", big);
Enclave.op("deep", deep);
Enclave.op("cycle", cycle);
Enclave.op("long_err", longErr);
Enclave.op("random", random);
Enclave.op("panic", panic);
Enclave.op("keep", keep);
Enclave.op("kept", getKept);
Enclave.op("kinds", kinds);
Enclave.op("get", get);
Enclave.op("set_limits", setLimits);
Enclave.op("edit", edit);

/** `[requestBytes, replyBytes, depth]`: changes the limits at run time (tests only). */
function setLimits(args: Value): Reply {
  setLimitsImpl(<i32>args.at(0).asInt(), <i32>args.at(1).asInt(), <i32>args.at(2).asInt(), 4);
  return Reply.ok();
}

/** A str of `args` bytes. */
function big(args: Value): Reply {
  return Reply.ok(Value.str("x".repeat(<i32>args.asInt())));
}

/** `args` nested arrays around nil. */
function deep(args: Value): Reply {
  let v = Value.nil();
  for (let i: i64 = 0; i < args.asInt(); i++) v = Value.array().push(v);
  return Reply.ok(v);
}

/** An array that contains itself. */
function cycle(args: Value): Reply {
  let a = Value.array();
  a.push(a);
  return Reply.ok(a);
}

/** An error whose message is 300 bytes of 2-byte characters (cut at 256 bytes, on a boundary). */
function longErr(args: Value): Reply {
  return Reply.err(ErrorCode.Denied, "é".repeat(150));
}

function random(args: Value): Reply {
  return Reply.ok(Value.bin(randomBytes(<i32>args.asInt())));
}

function panic(args: Value): Reply {
  assert(false, "boom");
  return Reply.ok();
}

/** Keeps a copy and a view of `args.v`. */
function keep(args: Value): Reply {
  kept = args.get("v").copy();
  keptView = args.get("v");
  return Reply.ok();
}

function getKept(args: Value): Reply {
  return Reply.ok(Value.array().push(kept).push(keptView));
}

/** One of each kind, built in AssemblyScript. */
function kinds(args: Value): Reply {
  return Reply.ok(
    Value.map()
      .set("nil", Value.nil())
      .set("t", Value.bool(true))
      .set("i", Value.int(i64.MIN_VALUE))
      .set("u", Value.uint(u64.MAX_VALUE))
      .set("f", Value.float(0.1))
      .set("h", Value.float(1.5))
      .set("s", Value.str("héllo ❤ 😀"))
      .set("lone", Value.str(String.fromCharCode(0xd800)))
      .set("b", Value.bin(new Uint8Array(3)))
      .set("t", Value.bool(false)) // replaces "t"
      .setKey(Value.int(7), Value.str("seven")),
  );
}

/** Reads typed fields the way handlers do. */
function get(args: Value): Reply {
  const out = Value.array();
  out.push(Value.bool(args.has("a")));
  out.push(Value.int(args.get("a").intOr(-1)));
  out.push(Value.str(args.get("é").asString()));
  out.push(Value.int(args.get("missing").intOr(-2)));
  out.push(Value.int(args.length));
  out.push(args.keyAt(0));
  out.push(args.at(100));
  return Reply.ok(out);
}

/**
 * `{a: array, m: map, s: str, b: bin}` decoded, then edited and read the ways handlers do: push onto
 * a decoded array (grows it), `set` on a decoded map (replace and add), copies, byte views of a
 * decoded str and bin, empty built containers.
 */
function edit(args: Value): Reply {
  const a = args.get("a");
  const m = args.get("m");
  const s = args.get("s");
  const b = args.get("b");
  const mc = m.copy();
  a.push(Value.int(1000)).push(Value.str("pushed"));
  m.set(m.keyAt(0).asString(), Value.str("replaced")).set("added", Value.int(-1));
  const out = Value.array();
  out.push(a);
  out.push(m);
  out.push(mc);
  out.push(Value.int(a.length));
  out.push(Value.int(m.length));
  out.push(Value.int(s.length));
  out.push(Value.bin(s.asBytes()));
  out.push(Value.bin(b.asBytes().slice(1)));
  out.push(Value.int(b.length));
  out.push(s.copy());
  out.push(Value.array());
  out.push(Value.map());
  out.push(m.at(m.length - 1));
  out.push(m.keyAt(m.length - 1));
  out.push(a.at(a.length - 1));
  out.push(a.keyAt(0));
  return Reply.ok(out);
}
