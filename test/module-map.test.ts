// The README's module map holds: every folder it names exists and every folder of src/
// is named, and the protocol layer (the MPEG-TS, RTP and RTSP folders, the
// RTSP server included) and the index format import nothing from the control
// plane. Imports are read with TypeScript's own pre-processor, so comments and
// strings that look like imports do not count, and `import type` does.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

/** The folders the README's module map names: its table rows `| \`src/<folder>/\` | role |`. */
function moduleMap(): string[] {
  const text = fs.readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('### Module map'), text.indexOf('### Glossary'));
  return [...section.matchAll(/^\| `src\/([a-z-]+)\/` \|/gm)].map((m) => m[1]);
}

/** Protocol code, the index format every thread uses, and the layers below the control plane. */
const PROTOCOL = ['mpegts', 'rtp', 'rtsp', 'index-format', 'shared', 'net'];

/** The control plane, as paths under src/: folders end in '/'. rtsp-backend.ts is the RTSP server's adapter over it. */
const CONTROL_PLANE = [
  'engine/', 'catalog/', 'datapath/', 'supervisor/', 'failover/', 'admin/', 'config/', 'cli/', 'server.ts', 'rtsp-backend.ts',
];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The module specifiers of a source file's imports, exports-from and dynamic imports. */
function specifiersOf(file: string): string[] {
  return ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

/** The modules a source file imports, as paths relative to src/ ('engine/engine.ts'); packages as they are named. */
function importsOf(file: string): string[] {
  return specifiersOf(file).map((fileName) => {
    if (!fileName.startsWith('.')) return fileName;
    const resolved = path.relative(SRC, path.resolve(path.dirname(file), fileName));
    return resolved.replace(/\.js$/, '.ts').split(path.sep).join('/');
  });
}

function inControlPlane(target: string): boolean {
  return CONTROL_PLANE.some((entry) => (entry.endsWith('/') ? target.startsWith(entry) : target === entry));
}

test('every folder the README module map names exists, and every folder of src/ is in the map', (t) => {
  const map = moduleMap();
  t.true(map.length >= 10, `the map names ${map.length} folders`);
  const folders = fs.readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  t.deepEqual(map.filter((name) => !folders.includes(name)), [], 'named in the map but missing from src/');
  t.deepEqual(folders.filter((name) => !map.includes(name)), [], 'in src/ but missing from the map');
});

test('the protocol folders, the index format, shared and net import nothing from the control plane', (t) => {
  const violations: string[] = [];
  let checked = 0;
  for (const folder of PROTOCOL) {
    for (const file of sourceFiles(path.join(SRC, folder))) {
      checked++;
      for (const target of importsOf(file)) {
        if (inControlPlane(target)) violations.push(`${path.relative(SRC, file)} imports ${target}`);
      }
    }
  }
  t.true(checked >= 10, `read ${checked} protocol files`);
  t.deepEqual(violations, []);
});

test('the import reader sees type-only, re-exported and dynamic imports, and not comments', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinframe-module-map-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'probe.ts');
  fs.writeFileSync(file, [
    "// import { x } from './commented.js';",
    "import type { A } from './type-only.js';",
    "export { B } from './re-exported.js';",
    "const c = await import('./dynamic.js');",
    "import 'a-package';",
  ].join('\n'));
  t.deepEqual(specifiersOf(file).sort(), ['./dynamic.js', './re-exported.js', './type-only.js', 'a-package']);
  t.true(inControlPlane('engine/engine.ts'));
  t.true(inControlPlane('server.ts'));
  t.false(inControlPlane('shared/clock.ts'));
  t.false(inControlPlane('rtsp/server.ts'));
});
