/**
 * The one bounded read of a file named by someone else (a module path, a contract.json, a CLI
 * input file): the path must name a regular file of at most `max` bytes. A FIFO would wait
 * forever for a writer, a device such as `/dev/zero` would never end, a huge file would fill
 * memory: each is refused, never waited on nor read whole.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * What {@link readBoundedFile} found. `too_large`: `size` is the size the file's stat gave, or,
 * with `atLeast`, the bytes read before the bound was passed (the file grew after the stat).
 * `errno`: opening or reading failed; `code` is the system's code (`ENOENT`...) or `'error'`.
 */
export type BoundedRead =
  | { readonly kind: 'ok'; readonly bytes: Uint8Array }
  | { readonly kind: 'not_regular' }
  | { readonly kind: 'too_large'; readonly size: number; readonly atLeast: boolean }
  | { readonly kind: 'errno'; readonly code: string; readonly error: unknown };

/**
 * Opening flags: read only, and O_NONBLOCK where the platform has it, so that opening a FIFO does
 * not wait for a writer (the file type is then checked on the open handle).
 */
const FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * Reads a regular file of at most `max` bytes. The type and size are checked on the open handle,
 * so the file read is the file checked, and the read stops one byte past `max` whatever the file
 * has grown to since. Never throws for a file-system condition: the caller turns each outcome into
 * its own error code and message.
 * @example
 * const read = await readBoundedFile('contract.json', 1 << 20);
 * if (read.kind !== 'ok') throw new Error(read.kind);
 */
export async function readBoundedFile(file: string | URL, max: number): Promise<BoundedRead> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, FLAGS);
    const info = await handle.stat();
    if (!info.isFile()) return { kind: 'not_regular' };
    if (info.size > max) return { kind: 'too_large', size: info.size, atLeast: false };
    // Room for the stat's size and one byte more; grown (up to max + 1) if the file grew.
    let buffer = new Uint8Array(info.size + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > max) return { kind: 'too_large', size: length, atLeast: true };
        const grown = new Uint8Array(Math.min(max + 1, length * 2));
        grown.set(buffer);
        buffer = grown;
      }
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return { kind: 'ok', bytes: buffer.subarray(0, length) };
  } catch (error) {
    return { kind: 'errno', code: (error as NodeJS.ErrnoException).code ?? 'error', error };
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
