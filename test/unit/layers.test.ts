// The one-way flow, held by a test: no import cycles in src/ or bench/, and
// no module importing a higher layer than its own. Layers, lowest first:
//   common | native, proto, raft | storage, transport, tls, auth | workers |
//   member, grpc | server, gateway | cli
// (A worker started by URL counts as an import.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { repoRoot } from '../common/repo.js';

const LAYER: Record<string, number> = {
  common: 0, native: 1, proto: 1, raft: 1, storage: 2, transport: 2, tls: 2, auth: 2, workers: 3,
  member: 4, grpc: 4, server: 5, gateway: 5, cli: 6,
};

type Graph = Map<string, string[]>;

function sourceFiles(root: string, dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(join(root, dir))) {
    const p = `${dir}/${n}`;
    if (statSync(join(root, p)).isDirectory()) sourceFiles(root, p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of each file, as repository paths of .ts files. */
export function importGraph(root: string, dirs: string[]): Graph {
  const g: Graph = new Map();
  for (const f of dirs.flatMap((d) => sourceFiles(root, d))) {
    const text = readFileSync(join(root, f), 'utf8');
    const deps: string[] = [];
    const at = (spec: string) => posix.normalize(posix.join(posix.dirname(f), spec.replace(/\.js$/, '.ts')));
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.\.?\/[^']+)'/g)) deps.push(at(m[1]!));
    for (const m of text.matchAll(/new URL\(\s*[`'](\.\.?\/[^`'$]+\.js)[`']/g)) deps.push(at(m[1]!));
    g.set(f, deps);
  }
  return g;
}

export function upwardImports(g: Graph): string[] {
  const layer = (f: string) => (f.startsWith('src/') ? LAYER[f.split('/')[1]!] : undefined);
  const out: string[] = [];
  for (const [f, deps] of g) {
    for (const d of deps) {
      const a = layer(f);
      const b = layer(d);
      if (a !== undefined && b !== undefined && b > a) out.push(`${f} -> ${d}`);
    }
  }
  return out;
}

/** Strongly connected components of more than one file (Tarjan). */
export function cycles(g: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) found.push(c);
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('the checker finds a cycle and an upward import when there is one', () => {
  const g: Graph = new Map([
    ['src/storage/a.ts', ['src/server/b.ts']],
    ['src/server/b.ts', ['src/storage/a.ts']],
  ]);
  assert.deepEqual(upwardImports(g), ['src/storage/a.ts -> src/server/b.ts']);
  assert.equal(cycles(g).length, 1);
});

test('every src/ folder has a layer', () => {
  const root = repoRoot();
  for (const n of readdirSync(join(root, 'src'))) {
    if (statSync(join(root, 'src', n)).isDirectory() && n !== 'types') assert.ok(n in LAYER, `src/${n} has no layer in this test`);
  }
});

test('no import cycles and no upward imports in src/ and bench/', () => {
  const g = importGraph(repoRoot(), ['src', 'bench']);
  assert.ok(g.size > 50, `only ${g.size} files read`);
  assert.deepEqual(cycles(g), []);
  assert.deepEqual(upwardImports(g), []);
});
