// The Extism peer of enclave-modules/echo: returns its input unchanged, built with the
// AssemblyScript PDK. Compiled by bench/peers/setup.mjs into build/echo.wasm.
import { Host } from '../node_modules/@extism/as-pdk/index';

// Extism plugins have no `env.abort`; route AssemblyScript's abort to a no-op trap-free stub.
export function myAbort(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  unreachable();
}

export function echo(): i32 {
  Host.output(Host.input());
  return 0;
}
