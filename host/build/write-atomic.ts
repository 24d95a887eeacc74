/** Writing a built module: whole or not at all. Shared by `enclave build` and `enclave embed-contract`. */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../core/index.js';

/**
 * Writes a file whole or not at all (a reader never sees half a module), through a temporary file
 * next to it, created new ('wx': a file or a link already at that name is refused, never written
 * through) and removed when anything fails; the rename replaces whatever is at `file` (a link
 * itself, never its target). Missing folders are created.
 * @param advice - the end of the message when the file cannot be written: what to do.
 * @throws {UsageError} naming the file when it cannot be written (its folder is a file, no permission...).
 * @example
 * await writeAtomic('build/kv.wasm', bytes);
 */
export async function writeAtomic(file: string, bytes: Uint8Array, advice = 'choose an --out directory this user can write.'): Promise<void> {
  // A random part: a temporary file a killed build left (same pid in a container) does not block the next.
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let created = false;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    const handle = await open(tmp, 'wx');
    created = true;
    try {
      await handle.writeFile(bytes);
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`Cannot write ${file}: ${code}: ${advice}`, { cause: err });
  }
}
