#!/usr/bin/env node
// Builds the peers' Wasm from source into build/ (gitignored). Run by bench/_peers.ts after
// `npm install --prefix bench/peers`, or by hand: `node bench/peers/setup.mjs`.
//
// asc comes from this folder's own assemblyscript (the version the Extism AS PDK is written
// for) or, failing that, the root's.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

async function loadAsc() {
  // Node's resolution looks in bench/peers/node_modules first, then the repository root's.
  const from = import.meta.resolve('assemblyscript/asc');
  return { asc: (await import(from)).default, from: fileURLToPath(from) };
}

export async function build() {
  if (!existsSync(join(here, 'node_modules', '@extism', 'as-pdk'))) {
    throw new Error('@extism/as-pdk is not installed: run `npm install --prefix bench/peers`');
  }
  mkdirSync(join(here, 'build'), { recursive: true });
  const { asc, from } = await loadAsc();
  let log = '';
  const sink = { write: (s) => { log += String(s); return true; } };
  const { error } = await asc.main(
    [
      'src/echo.ts', '--outFile', 'build/echo.wasm', '-O3', '--runtime', 'incremental',
      // Extism plugins import nothing from `env`: AssemblyScript's abort goes to a local trap.
      '--use', 'abort=src/echo/myAbort', '--config', '/dev/null', '--baseDir', here,
    ],
    { stdout: sink, stderr: sink },
  );
  if (error) throw new Error(`asc (${from}) failed: ${error.message}\n${log}`);
  return join(here, 'build', 'echo.wasm');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  build().then(
    (out) => process.stderr.write(`built ${out}\n`),
    (err) => {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
