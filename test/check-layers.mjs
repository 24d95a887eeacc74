#!/usr/bin/env node
/**
 * `npm run check:layers` (run first by `npm test`): the import rules of docs/ARCHITECTURE.md.
 *
 * 1. dependency-cruiser with .dependency-cruiser.cjs: the direction of every import between layers,
 *    other layers reached only through their index.ts, no cycles, nothing unresolvable, no orphans.
 * 2. What dependency-cruiser cannot see, the names imported: runtime/ may import from attest/ only
 *    what measurement and trust need (RUNTIME_MAY_IMPORT_FROM_ATTEST below); sealing keys and
 *    evidence reach the runtime through the interfaces it declares itself (runtime/platform.ts).
 *
 *   node test/check-layers.mjs [root]      exit 0 clean, 1 a violation (listed on stderr), 2 could not run
 *
 * dependency-cruiser runs through its API, not its `depcruise` CLI: the CLI of version 18 refuses
 * Node 20 (its engines say ^22 || ^24 || >=26), which this package still supports (>= 20.19).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { cruise, format } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

/** The folders cruised: every layer and the tests (bench/peers, dist and the guest code are excluded by the config). */
export const CRUISED = ['core', 'attest', 'runtime', 'host', 'bench', 'test'];

/**
 * What runtime/ may import from attest/index.ts: measurement, identity and the trust check, with
 * their types. Anything else of the platform's (evidence, reports, sealing keys, the provider)
 * crosses through an interface runtime/ declares, so a TEE backend never has to look like attest/.
 */
export const RUNTIME_MAY_IMPORT_FROM_ATTEST = {
  values: ['measure', 'moduleIdentity', 'checkTrust'],
  types: ['ModuleIdentity', 'TrustPolicy', 'TrustedSigner', 'PublicKeyInput'],
};

/** dependency-cruiser's verdict: the formatted violations, or '' when there are none. */
async function cruiseLayers(root) {
  const config = join(root, '.dependency-cruiser.cjs');
  const options = await extractDepcruiseOptions(config);
  const tsConfig = extractTSConfig(join(root, 'tsconfig.json'));
  const folders = CRUISED.filter((d) => exists(join(root, d)));
  const here = process.cwd();
  process.chdir(root); // rule paths are relative to the working directory
  try {
    const result = await cruise(folders, { ...options, validate: true }, {}, { tsConfig });
    const { summary } = result.output;
    if (summary.violations.length === 0) return { count: 0, modules: summary.totalCruised, text: '' };
    const { output } = await format(result.output, { outputType: 'err' });
    return { count: summary.violations.length, modules: summary.totalCruised, text: output };
  } finally {
    process.chdir(here);
  }
}

function exists(path) {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function* scriptFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* scriptFiles(path);
    // Every script a module of runtime/ could be, not only .ts: the names rule holds for them all.
    else if (/\.[cm]?[jt]s$/.test(entry.name) && !/\.d\.[cm]?ts$/.test(entry.name)) yield path;
  }
}

/** Names runtime/ imports or re-exports from attest/ that are not on the list. */
function checkRuntimeNames(root) {
  const runtime = join(root, 'runtime');
  if (!exists(runtime)) return [];
  const allowedValues = new Set(RUNTIME_MAY_IMPORT_FROM_ATTEST.values);
  const allowedTypes = new Set([...RUNTIME_MAY_IMPORT_FROM_ATTEST.values, ...RUNTIME_MAY_IMPORT_FROM_ATTEST.types]);
  const problems = [];
  for (const file of scriptFiles(runtime)) {
    const rel = relative(root, file).split(sep).join('/');
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const report = (node, what) => {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
      problems.push(`${rel}:${line + 1}: ${what}`);
    };
    const visit = (node) => {
      const specifier =
        (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)
          ? node.moduleSpecifier.text
          : ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])
            ? node.arguments[0].text
            : ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)
              ? node.argument.literal.text
              : undefined;
      if (specifier !== undefined && specifier.startsWith('.')) {
        const target = relative(root, resolve(file, '..', specifier)).split(sep).join('/');
        if (target.startsWith('attest/')) checkNode(node, report, allowedValues, allowedTypes);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return problems;
}

function checkNode(node, report, allowedValues, allowedTypes) {
  if (ts.isCallExpression(node)) return report(node, 'a dynamic import of attest/ (import the allowed names statically)');
  if (ts.isImportTypeNode(node)) {
    const name = node.qualifier && ts.isIdentifier(node.qualifier) ? node.qualifier.text : '(namespace)';
    if (!allowedTypes.has(name)) report(node, `the type ${name} from attest/ (runtime/ may use only ${[...allowedTypes].join(', ')})`);
    return;
  }
  if (ts.isExportDeclaration(node)) {
    return report(node, 'a re-export from attest/ (runtime/index.ts exposes the runtime, not the platform)');
  }
  const clause = node.importClause;
  if (!clause) return report(node, 'a side-effect import of attest/');
  if (clause.name) report(node, 'a default import from attest/');
  const bindings = clause.namedBindings;
  if (bindings && ts.isNamespaceImport(bindings)) return report(node, 'a namespace import of attest/ (import the allowed names)');
  for (const element of bindings?.elements ?? []) {
    const name = (element.propertyName ?? element.name).text;
    const typeOnly = clause.isTypeOnly || element.isTypeOnly;
    if (typeOnly ? !allowedTypes.has(name) : !allowedValues.has(name)) {
      report(
        element,
        `${typeOnly ? 'the type ' : ''}${name} from attest/: runtime/ imports attest/ only for measurement and trust ` +
          `(${RUNTIME_MAY_IMPORT_FROM_ATTEST.values.join(', ')} and their types); declare an interface in runtime/platform.ts instead`,
      );
    }
  }
}

async function main() {
  const root = resolve(process.argv[2] ?? join(fileURLToPath(import.meta.url), '..', '..'));
  const layers = await cruiseLayers(root);
  const names = checkRuntimeNames(root);
  if (layers.count > 0) process.stderr.write(layers.text);
  for (const p of names) process.stderr.write(`  error runtime-imports-attest-for-measurement-only: ${p}\n`);
  if (layers.count > 0 || names.length > 0) {
    const what = [
      layers.count > 0 ? `${layers.count} dependency-cruiser violation(s) (one per module for a cycle)` : '',
      names.length > 0 ? `${names.length} name(s) runtime/ may not import from attest/` : '',
    ];
    process.stderr.write(`check:layers: FAILED: ${what.filter(Boolean).join('; ')}: the layer rules are in docs/ARCHITECTURE.md\n`);
    return 1;
  }
  process.stdout.write(`check:layers: ok (${layers.modules} modules, no import against the layers)\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`check:layers: could not run: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
