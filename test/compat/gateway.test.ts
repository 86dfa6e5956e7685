// Differential test of the JSON gateway: every case in gateway-cases.txt is
// sent over HTTP/1.1 to a real etcd 3.4 and to etsd (fresh servers, same
// flags, cases in file order on both), and the transcripts (status, content
// type, body text, stream lines) must be equal after normalizing what
// legitimately differs (see normalizeTranscript). Bodies are compared as
// text, so field order and Go's omission of zero values count.
//
//   ETSD_COMPAT_TARGET=etcd   compare etcd with a second etcd (harness self-test)
//   ETSD_GATEWAY_DUMP=dir     write each case's two normalized transcripts to dir/<n>.{etcd,target}

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPrerequisites, repoRoot, serverCommand, startServer, stopServer, targetKind, waitReady, type ServerHandle } from './harness.js';
import { normalizeTranscript, parseGatewayCases, runGatewayCase, type ServerIds } from './gateway-cases.js';
import { dig, post } from '../integration/gateway-http.js';

const casesFile = join(repoRoot(), 'test', 'compat', 'gateway-cases.txt');
const dumpDir = process.env['ETSD_GATEWAY_DUMP'];
const cases = parseGatewayCases(readFileSync(casesFile, 'utf8'), casesFile);

const started: ServerHandle[] = [];
after(async () => { await Promise.all(started.map((h) => stopServer(h))); });

async function idsOf(h: ServerHandle): Promise<ServerIds> {
  const r = await post(h.endpoint, '/v3/maintenance/status', '{}');
  assert.equal(r.status, 200, `${h.label} status: ${r.text}`);
  return { clusterId: String(dig(r.json, 'header', 'cluster_id')), memberId: String(dig(r.json, 'header', 'member_id')) };
}

checkPrerequisites();
const kind = targetKind();
serverCommand(kind);
const ref = await startServer('etcd', 'gw-etcd');
started.push(ref);
const target = await startServer(kind, kind === 'etcd' ? 'gw-etcd2' : 'gw-etsd');
started.push(target);
await Promise.all([waitReady(ref), waitReady(target)]);
const refIds = await idsOf(ref);
const targetIds = await idsOf(target);

test(`gateway cases file has cases (${cases.length})`, () => {
  assert.ok(cases.length > 0);
});

for (const c of cases) {
  test(`gateway: ${c.name} (${casesFile}:${c.line})`, async () => {
    // One server after the other: a case's streams and writes never overlap between them.
    const want = normalizeTranscript(await runGatewayCase(ref.endpoint, c), refIds);
    const got = normalizeTranscript(await runGatewayCase(target.endpoint, c), targetIds);
    if (dumpDir !== undefined) {
      const n = String(cases.indexOf(c) + 1).padStart(2, '0');
      writeFileSync(join(dumpDir, `${n}.etcd`), want + '\n');
      writeFileSync(join(dumpDir, `${n}.target`), got + '\n');
    }
    assert.equal(got, want, `case "${c.name}" differs\n--- etcd ---\n${want}\n--- ${target.label} ---\n${got}`);
  });
}
