#!/usr/bin/env node
// Builds a JavaScript extension module into a component for `WasmApacheModule`:
//
//   node sdk-js/build.mjs app.js -o app.wasm [--componentize-js PATH] [--wit DIR]
//
// The component exports what app.js exports among the apache:httpd WIT's interfaces (named
// in camelCase: fixups, accessChecker, requestEnd ...), found by importing app.js here (it
// must import nothing but JavaScript files: the SDK, its own modules). componentize-js comes
// from --componentize-js, the COMPONENTIZE_JS environment variable, or PATH; wasi:http, which
// mod_wasm does not give extension modules, is left out.
//
// componentize-js reads the imports at build time from one folder tree (the working
// directory it runs in, seen as "/"): imports must be relative paths within the nearest
// folder that holds both app.js and this SDK (or, when that is "/", within app.js's folder:
// copy mod_wasm_sdk.js next to app.js).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SDK = dirname(fileURLToPath(import.meta.url));

function fail(message) {
  console.error(message);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { wit: join(SDK, '..', 'wit'), tool: process.env.COMPONENTIZE_JS || 'componentize-js' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '-o' || flag === '--output') args.output = argv[++i];
    else if (flag === '--wit') args.wit = argv[++i];
    else if (flag === '--componentize-js') args.tool = argv[++i];
    else if (!args.app && !flag.startsWith('-')) args.app = flag;
    else fail(`build.mjs: unknown argument ${flag}`);
  }
  if (!args.app || !args.output) fail('usage: node sdk-js/build.mjs app.js -o app.wasm [--componentize-js PATH] [--wit DIR]');
  return args;
}

// Where componentize-js runs: the nearest folder holding both `app` and the SDK, unless that
// is the root, which componentize-js 0.23 cannot take as its working directory.
function workspace(app) {
  const a = dirname(app).split(sep);
  const b = SDK.split(sep);
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  const common = a.slice(0, n).join(sep);
  return common === '' ? dirname(app) : common;
}

// The package name and {camelCase export: interface} of the WIT's one-export worlds.
function exportable(witDir) {
  const text = readdirSync(witDir).filter((f) => f.endsWith('.wit')).map((f) => readFileSync(join(witDir, f), 'utf8')).join('\n');
  const pkg = /^package\s+([^;]+);/m.exec(text);
  const interfaces = [...text.matchAll(/world\s+[\w-]+\s*\{\s*import\s+types;\s*export\s+([\w-]+);\s*\}/g)].map((m) => m[1]);
  if (!pkg || interfaces.length === 0) fail(`${witDir}: not the apache:httpd WIT (no package, or no per-phase worlds)`);
  const camel = (s) => s.replace(/-(\w)/g, (_, c) => c.toUpperCase());
  return { pkg: pkg[1], known: Object.fromEntries(interfaces.map((i) => [camel(i), i])) };
}

const args = parseArgs(process.argv.slice(2));
const app = resolve(args.app);
const { pkg, known } = exportable(args.wit);
const module = await import(pathToFileURL(app).href);
const exported = Object.keys(module).filter((name) => Object.hasOwn(known, name));
for (const name of exported) {
  if (typeof module[name]?.[name] !== 'function') {
    fail(`${args.app}: exports ${name}, but the class given to exportModule() defines no ${name} method`);
  }
}
const phases = exported.filter((name) => name !== 'requestEnd');
if (phases.length === 0) fail(`${args.app}: exports none of ${Object.keys(known).join(', ')}`);
if (!exported.includes('requestEnd')) {
  console.error(`${basename(app)}: note: no requestEnd export, so a kept instance (WasmApacheModuleScope server) holds the last request's module object until the next request`);
}
console.error(`${basename(app)}: exports ${exported.join(', ')}`);

// One world exporting them all, in a copy of the WIT package (componentize-js takes one world).
const work = mkdtempSync(join(tmpdir(), 'mod_wasm_sdk_build_'));
try {
  const wit = join(work, 'wit');
  mkdirSync(wit);
  for (const f of readdirSync(args.wit).filter((f) => f.endsWith('.wit'))) copyFileSync(join(args.wit, f), join(wit, f));
  const body = exported.map((name) => `export ${known[name]};`).join(' ');
  writeFileSync(join(wit, 'mod-wasm-sdk-build.wit'), `package ${pkg};\n\nworld mod-wasm-sdk-build { import types; ${body} }\n`);
  const output = resolve(args.output);
  const partial = `${output}.new`;
  // The tool runs in the workspace below: a relative path to it is the caller's.
  const tool = args.tool.includes('/') ? resolve(args.tool) : args.tool;
  const run = spawnSync(tool, [app, '--wit', wit, '-n', 'mod-wasm-sdk-build', '-d', 'http', '-d', 'fetch-event', '-o', partial],
    { stdio: 'inherit', cwd: workspace(app) });
  if (run.error) fail(`${tool}: ${run.error.message} (npm install @bytecodealliance/componentize-js, or give --componentize-js)`);
  if (run.status !== 0) fail(`componentize-js failed (${run.status})`);
  renameSync(partial, output);
} finally {
  rmSync(work, { recursive: true, force: true });
}
