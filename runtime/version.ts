/** The runtime's version, carried in evidence (`enclave.runtime`). Kept equal to package.json by a test. */
export const RUNTIME_VERSION = '0.1.0';
