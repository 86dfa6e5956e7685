// A real apply worker thread for unit tests: started with the given data,
// terminated after the test; `failed` rejects if it errors or exits.
import { Worker } from 'node:worker_threads';
import type { TestContext } from 'node:test';
import type { ApplyReady, ApplyWorkerData } from '../../src/workers/apply-worker.js';

export interface StartedApplyWorker { worker: Worker; ready: ApplyReady; failed: Promise<never> }

export async function startApplyWorker(t: TestContext, data: ApplyWorkerData): Promise<StartedApplyWorker> {
  const worker = new Worker(new URL('../../src/workers/apply-worker.js', import.meta.url), { workerData: data });
  t.after(() => worker.terminate());
  const failed = new Promise<never>((_, reject) => {
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`apply worker exited with ${code}`)));
  });
  failed.catch(() => undefined); // observed through the races below; no unhandled rejection at terminate
  const ready = await Promise.race([new Promise<ApplyReady>((resolve) => worker.once('message', resolve)), failed]);
  return { worker, ready, failed };
}
