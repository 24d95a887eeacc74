/**
 * Miniature source trees for the layer check (test/check-layers.mjs with the real
 * .dependency-cruiser.cjs): test/layers.test.ts and test/review-architecture.test.ts write them and
 * run the check on them.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Writes `files` (path: text) under `root`, with the project's .dependency-cruiser.cjs; returns `root`. */
export async function writeLayerTree(root: string, files: Record<string, string>): Promise<string> {
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text);
  }
  await cp(path.join(ROOT, '.dependency-cruiser.cjs'), path.join(root, '.dependency-cruiser.cjs'));
  return root;
}

/** Runs the layer check on `root`: its exit code and all it printed. */
export async function checkLayers(root: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [path.join(ROOT, 'test', 'check-layers.mjs'), root]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}
