// Differential compatibility suite: the same etcdctl 3.4 commands against a
// real etcd 3.4 and against etsd; stdout, stderr and exit status must be
// identical after normalizing cluster_id / member_id / raft_term (and the
// client's own timestamps, UUIDs and the server address). Revisions are not
// normalized: both servers start empty, so they must match exactly.
//
//   ETSD_COMPAT_TARGET unset | etsd  compare etcd with etsd (the real test)
//   ETSD_COMPAT_TARGET=etcd          compare etcd with a second etcd (harness self-test)
//   ETSD_COMPAT_CASES=path           use another case file (default test/compat/cases.txt)
//   ETSD_COMPAT_DUMP=path            also write every case's normalized etcd output to path
//   ETSD_COMPAT_KEEP=1               keep the temp data dirs and server logs

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeMismatch, describeStep, normalizeCase, parseCases, recordedSteps, resultsEqual, type CompatCase } from './cases.js';
import {
  checkPrerequisites, logTail, repoRoot, serverCommand, startServer, stopServer, targetKind, waitReady,
  type ServerHandle,
} from './harness.js';
import { runCase } from './runner.js';

const casesFile = process.env['ETSD_COMPAT_CASES'] ?? join(repoRoot(), 'test', 'compat', 'cases.txt');
const dumpFile = process.env['ETSD_COMPAT_DUMP'];
const keepDirs = process.env['ETSD_COMPAT_KEEP'] === '1';

// Parsed at load time so that each case is its own test(); a parse error
// fails the file loudly with file:line.
const cases: CompatCase[] = parseCases(readFileSync(casesFile, 'utf8'), casesFile);

interface Pair { ref: ServerHandle; target: ServerHandle }

const started: ServerHandle[] = [];
let setupError: Error | undefined;
let pair: Pair | undefined;

async function setup(): Promise<Pair> {
  checkPrerequisites();
  const kind = targetKind();
  serverCommand(kind); // fail before starting anything if etsd is not built
  const ref = await startServer('etcd', 'etcd');
  started.push(ref);
  const target = await startServer(kind, kind === 'etcd' ? 'etcd#2' : 'etsd');
  started.push(target);
  await Promise.all([waitReady(ref), waitReady(target)]);
  return { ref, target };
}

after(async () => {
  await Promise.all(started.map((h) => stopServer(h, keepDirs)));
  if (keepDirs) for (const h of started) console.log(`kept ${h.label} dir: ${h.tempDir}`);
});

test('setup: start etcd and the target server', { timeout: 60_000 }, async () => {
  try {
    pair = await setup();
    if (dumpFile !== undefined) writeFileSync(dumpFile, `# reference outputs (${pair.ref.label}), normalized\n`);
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
    throw setupError;
  }
});

for (const c of cases) {
  test(c.name, { timeout: 60_000 }, async () => {
    if (pair === undefined) {
      throw new Error(`not run: setup failed: ${setupError?.message ?? 'unknown error'}`);
    }
    const { ref, target } = pair;
    const [ra, rb] = await Promise.all([runCase(ref, c), runCase(target, c)]);
    const na = normalizeCase(c, ra.result, ref.endpoint, ra.leases);
    const nb = normalizeCase(c, rb.result, target.endpoint, rb.leases);
    if (dumpFile !== undefined) {
      const parts: Buffer[] = [];
      recordedSteps(c).forEach((s, i) => {
        const o = na.outputs[i];
        const title = c.steps.length > 1 ? `\n=== ${c.name} (line ${s.line}): ` : `\n=== ${c.name}: `;
        parts.push(Buffer.from(`${title}${describeStep(s)} -> ${o === undefined ? 'not run' : o.signal !== null ? `killed by ${o.signal}` : `exit ${o.code}`}\n--- stdout\n`));
        if (o !== undefined) parts.push(o.stdout, Buffer.from('\n--- stderr\n'), o.stderr);
      });
      for (const n of na.notes) parts.push(Buffer.from(`\n--- note: ${n}\n`));
      appendFileSync(dumpFile, Buffer.concat(parts));
    }
    if (na.notes.length > 0) {
      // The reference itself did not behave as the case expects: the case is wrong, not the target.
      assert.fail(`case "${c.name}" (${c.file}:${c.line}) does not work on the reference ${ref.label}:\n` +
        na.notes.join('\n') + '\n' + describeMismatch(c, na, nb, ref.label, target.label));
    }
    if (!resultsEqual(na, nb)) {
      let msg = describeMismatch(c, na, nb, ref.label, target.label);
      for (const h of [ref, target]) {
        if (h.exited) msg += `\n--- ${h.label} ${h.exitDescription}; log tail:\n${logTail(h)}`;
      }
      msg += '\n(later cases may fail too: the two servers no longer hold the same state)';
      assert.fail(msg);
    }
  });
}
