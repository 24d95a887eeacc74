/** How the CLI shows a path it wrote or will use: short when it is under the working directory. */
import path from 'node:path';

/**
 * `file` relative to the working directory when it is inside it (`.` for the directory itself),
 * else `file` as given (absolute).
 * @example
 * shownPath(path.join(process.cwd(), 'kv', 'build', 'kv.wasm')); // 'kv/build/kv.wasm'
 */
export function shownPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  if (rel === '') return '.';
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}
