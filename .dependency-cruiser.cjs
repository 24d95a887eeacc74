/**
 * The layer rules of docs/ARCHITECTURE.md, checked by `npm run check:layers` (run first by `npm test`):
 *
 *   host/    -> runtime/index.ts, attest/index.ts, core/index.ts
 *   runtime/ -> core/index.ts, attest/index.ts (for measurement only: test/check-layers.mjs checks the names)
 *   attest/  -> core/index.ts
 *   core/    -> nothing of ours
 *   bench/   -> host/, runtime/, attest/, core/ index.ts; nothing but bench/ and test/ imports bench/
 *
 * Each layer's public surface is its index.ts: another layer imports only that, never a sibling file
 * and never an internal `_` file. Inside a layer, files import each other directly. test/ may reach
 * into any layer (unit tests of internals) but is checked for cycles and unresolvable imports too.
 * Type-only imports count: a type import against the direction is still a dependency against it.
 */

/** The layers, lowest first. */
const LAYERS = ['core', 'attest', 'runtime', 'host', 'bench'];
const OURS = '^(core|attest|runtime|host|bench|test|enclave-modules)/';
/** The package's own name (package.json) and its subpaths, as an import names them (resolved, they are in dist/). */
const OWN_NAME = '^enclave(/|$)';

/**
 * The rule that files of `layer` import nothing of ours but `layer` itself and the layers in `below`
 * (npm packages and node builtins are not ours, so they stay allowed).
 */
function importsOnly(name, layer, below, comment) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: `^${layer}/` },
    to: { path: OURS, pathNot: `^(${[layer, ...below].join('|')})/` },
  };
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    importsOnly('core-imports-nothing-ours', 'core', [], 'core/ is the base layer: node builtins and npm packages only.'),
    importsOnly(
      'attest-imports-only-core',
      'attest',
      ['core'],
      'attest/ (the platform) sits on core/ alone: it never reaches up into runtime/ or host/.',
    ),
    importsOnly(
      'runtime-imports-only-core-and-attest',
      'runtime',
      ['core', 'attest'],
      'runtime/ imports core/ and, for measurement only, attest/; never host/ or bench/.',
    ),
    importsOnly(
      'host-imports-no-bench',
      'host',
      ['runtime', 'attest', 'core'],
      'host/ is the product: benchmarks (and their devDependencies) never enter it.',
    ),
    {
      name: 'nothing-imports-bench',
      comment: 'bench/ is not part of the product: only bench/ itself and test/ import it.',
      severity: 'error',
      from: { pathNot: '^(bench|test)/' },
      to: { path: '^bench/' },
    },
    {
      name: 'only-through-index',
      comment:
        'Another layer is reached only through its index.ts (its public surface); inside a layer, ' +
        'files import each other directly. Covers `_` files, which are never imported from another layer.',
      severity: 'error',
      from: { path: `^(${LAYERS.join('|')})/` },
      to: { path: `^(${LAYERS.join('|')})/`, pathNot: ['^$1/', `^(${LAYERS.join('|')})/index\\.ts$`] },
    },
    {
      name: 'no-dist',
      comment:
        'Sources import sources, never the build output: dist/ (where the package\'s own name, `enclave` ' +
        'or `enclave/attest`, resolves) is not cruised, so an import from there would pass every rule above. ' +
        'test/ may import the package by its name, as a service would (test/package.test.ts).',
      severity: 'error',
      from: { path: `^(${LAYERS.join('|')})/` },
      // The package's own name unresolved (no dist/ yet) is this import too.
      to: { path: `^dist/|${OWN_NAME}` },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles anywhere, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-unresolvable',
      comment: 'Every import resolves to a file or an installed package.',
      severity: 'error',
      from: {},
      // But test/ may import the package by its own name before dist/ is built (npm ci --ignore-scripts,
      // then npm test: this check runs before vitest's global setup builds dist/).
      to: { couldNotResolve: true, pathNot: OWN_NAME },
    },
    {
      name: 'no-orphans',
      comment: 'A source file nothing imports and that imports nothing is dead code (declaration files excepted).',
      severity: 'error',
      from: { orphan: true, pathNot: ['\\.d\\.ts$', '(^|/)\\.[^/]+$', '^test/crypto/gen-[^/]*\\.mjs$'] },
      to: {},
    },
  ],
  options: {
    // dist/ is not followed but not excluded either: an excluded module's importers lose the import
    // altogether, and no rule could see it (no-dist above).
    doNotFollow: { path: ['node_modules', '^dist/'] },
    // bench/peers has its own package.json; enclave-modules/, test/sdk-fixtures/ and the crypto
    // harness are AssemblyScript, compiled by asc, not tsc; test/consumer/ is a user's project,
    // compiled in a temp folder against the installed package and the types it generates there.
    exclude: { path: ['^bench/peers/', '^enclave-modules/', '^test/sdk-fixtures/', '^test/crypto/harness\\.ts$', '^test/consumer/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
