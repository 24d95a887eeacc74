// Allocation helpers for big buffers (the request buffer, the reply buffer).

/** An uninitialised ArrayBuffer of `n` bytes (callers write every byte before they read it). */
export function allocBuffer(n: usize): ArrayBuffer {
  return changetype<ArrayBuffer>(__new(n, idof<ArrayBuffer>()));
}
