/** The runtime's version, carried in evidence (`enclave.runtime`). Kept equal to package.json by a test. */
export const RUNTIME_VERSION = '0.1.0';
/**
 * The glue a component runs with (`enclave.component`'s `glue` in its evidence): the pinned
 * jco-transpile. Kept equal to package.json's dependency and the installed package by a test.
 */
export const COMPONENT_GLUE = 'jco-transpile@0.15.0';
