// The module map holds: every folder it names exists and every folder of src/
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

/** Folder of src/ → its one-line role. */
const MODULE_MAP: Readonly<Record<string, string>> = {
  admin: 'the operator socket: line protocol, server, and its backend over the engine',
  catalog: 'assets under the mount points: URL resolution, indexing on a pool, the index cache',
  cli: 'entry points: twinframe (the server) and twinframectl (the operator client)',
  config: 'the configuration schema and its persisted store',
  datapath: 'one data-path thread: reads the asset, paces and sends the datagrams',
  engine: 'sessions and admission, ports, the path and supervisor workers, failover actions',
  failover: 'the failover state machine',
  'index-format': 'the asset index file (.tfidx) as bytes: layout, codec, lookups',
  mpegts: 'MPEG-TS packets and PSI tables',
  net: 'connection plumbing shared by the servers: the ordered connection',
  rtp: 'RTP packetizing of MPEG-TS (RFC 2250) and the RTP clock',
  rtsp: 'the RTSP/1.0 server: framing, headers, SDP, sessions, RTCP, and the backend interface it needs',
  shared: 'what the threads share: SAB layout, control block, command queue, clock',
  supervisor: 'the supervisor thread: heartbeats, failure detection',
};

/** Protocol code, and the index format every thread uses. */
const PROTOCOL = ['mpegts', 'rtp', 'rtsp', 'index-format'];

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

test('every folder the module map names exists, and every folder of src/ is in the map', (t) => {
  const folders = fs.readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  t.deepEqual(Object.keys(MODULE_MAP).filter((name) => !folders.includes(name)), [], 'named in the map but missing from src/');
  t.deepEqual(folders.filter((name) => !(name in MODULE_MAP)), [], 'in src/ but missing from the map');
});

test('the protocol folders and the index format import nothing from the control plane', (t) => {
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
