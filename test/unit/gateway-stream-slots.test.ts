// src/gateway/stream-slots.ts over a real HTTP server: with a limit of two,
// two open requests (held like watches) make a third wait until one of them
// closes; a waiting request whose client goes away leaves the queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamSlots } from '../../src/gateway/stream-slots.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(5);
}

test('beyond the limit a request waits for an open one to close', async () => {
  const slots = new StreamSlots(2);
  const ran: string[] = [];
  const server = http.createServer((req, res) => {
    slots.acquire(res, () => {
      ran.push(req.url!);
      if (req.url!.startsWith('/hold')) res.write('held\n'); // stays open, as a watch
      else res.end('done');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const open = (path: string) => http.get({ host: '127.0.0.1', port, path, agent: false });
  try {
    const hold1 = open('/hold1');
    const hold2 = open('/hold2');
    hold1.on('error', () => undefined);
    hold2.on('error', () => undefined);
    await until(() => ran.length === 2);

    const gone = open('/gone');
    gone.on('error', () => undefined);
    await until(() => slots.queued === 1);
    gone.destroy();
    await until(() => slots.queued === 0);

    const quick = new Promise<string>((resolve, reject) => {
      open('/quick').on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    await until(() => slots.queued === 1);
    assert.deepEqual(ran.sort(), ['/hold1', '/hold2']);
    hold1.destroy();
    assert.equal(await quick, 'done');
    assert.deepEqual(ran, ['/hold1', '/hold2', '/quick']);
    hold2.destroy();
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
