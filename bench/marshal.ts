/**
 * Marshalling cost, without the Wasm call, through the functions the runtime calls: `encodeCall`
 * (the op's frame plus msgpackr packing the args into the reusable buffer, with the size and depth
 * checks) and, for the reply `{ok}`, `checkMsgpack` then `decodeReply` (the envelope header read by
 * hand, the value by msgpackr); the floor is copying the same bytes once.
 *
 *   npm run bench -- marshal
 */
import { checkMsgpack, createPackr, decodeReply, encodeCall, requestFrame, unpackr } from '../runtime/index.js';
import { payload } from './_enclaves.js';
import { defineSuite, formatBytes, isMain, runStandalone, type Case } from './_harness.js';
import { SIZES } from './boundary.js';

/** The default depth limit (docs/ABI.md §5). */
const DEPTH = 32;

export const suite = defineSuite({
  name: 'marshal',
  description: 'msgpack envelope: pack, check, unpack (no Wasm call)',
  maxTime: 0.75,
  quickMaxTime: 0.2,
  async setup() {
    const packr = createPackr();
    const cases: Case[] = [];
    for (const size of SIZES) {
      const group = formatBytes(size);
      const data = payload(size);
      const frame = requestFrame('echo');
      const limits = { requestBytes: 16 * 1024 * 1024, depth: DEPTH };
      const anyShape = () => undefined;
      const encoded = encodeCall(packr, 'echo', frame, anyShape, data, limits);
      // A copy: msgpackr's reusable buffer is shared by every Packr in the process, so the next
      // pack() anywhere (the reply below) would overwrite a view of it.
      const requestBytes = new Uint8Array(encoded.buffer.subarray(encoded.start, encoded.end));
      const reply = new Uint8Array(createPackr().pack({ ok: data }));
      if (checkMsgpack(requestBytes, DEPTH) !== undefined || checkMsgpack(reply, DEPTH) !== undefined) {
        throw new Error('the envelopes do not pass checkMsgpack');
      }
      const back = unpackr.unpack(reply) as { ok: Uint8Array };
      if (back.ok.length !== size) throw new Error('unpack lost bytes');
      const sink = new Uint8Array(reply.length);
      const batch = size >= 65_536 ? 16 : size >= 4096 ? 128 : 1024;
      cases.push(
        {
          name: `copy ${group}`,
          group,
          role: 'floor',
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) sink.set(reply);
          },
        },
        {
          name: `encode request ${group}`,
          group,
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) encodeCall(packr, 'echo', frame, anyShape, data, limits);
          },
        },
        {
          name: `check + decode reply ${group}`,
          group,
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) {
              checkMsgpack(reply, DEPTH);
              decodeReply(reply, 0, reply.length);
            }
          },
        },
        {
          name: `msgpackr unpack whole reply ${group}`,
          group,
          role: 'reference',
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) unpackr.unpack(reply);
          },
        },
      );
    }
    return { cases, notes: ['Requests are packed into the enclave\'s reusable buffer (no allocation); replies are unpacked with `copyBuffers`, so the bin is copied out once.'] };
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
