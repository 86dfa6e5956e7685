// Runs one case (a list of steps) against one server: foreground etcdctl
// steps, background etcdctl processes and the @wait/@kill/@sleep/@until
// directives. Returns the raw outputs of the recorded steps (run, bg) in step
// order, plus notes about anything that did not go as the case expects
// (a @wait that ran out of time, an undefined $L variable). Every process is
// stopped by its PID before this returns.

import { LeaseIds, firstLines, normalizeOutput, recordedSteps, wantsProtobuf, type CaseResult, type CompatCase, type RunOutput } from './cases.js';
import { spawnEtcdctl, type EtcdctlProc, type ServerHandle } from './harness.js';

/** A background etcdctl is killed (SIGKILL, "timed out") after this long. */
export const BACKGROUND_TIMEOUT_MS = 30_000;
/** How long @wait and @until wait before giving up (and noting it). */
export const WAIT_TIMEOUT_MS = 10_000;
/** Before stopping the background processes still running at the end of a case: catches late extra output. */
export const END_GRACE_MS = 200;
const UNTIL_INTERVAL_MS = 50;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface CaseRun {
  readonly result: CaseResult;
  /** The lease numbering built while running (normalizeCase continues it). */
  readonly leases: LeaseIds;
}

function nonEmptyLines(b: Buffer): number {
  return b.toString('latin1').split('\n').filter((l) => l.trim() !== '').length;
}

export async function runCase(h: ServerHandle, c: CompatCase): Promise<CaseRun> {
  const leases = new LeaseIds();
  const notes: string[] = [];
  const recorded = recordedSteps(c);
  const outputs = new Map<number, RunOutput>(); // index in `recorded` -> output
  const bgs = new Map<string, { proc: EtcdctlProc; index: number; args: readonly string[] }>();

  const scan = (args: readonly string[], out: RunOutput): void => {
    const n = normalizeOutput(args, out, h.endpoint);
    if (!wantsProtobuf(args)) leases.scan(n.stdout.toString('latin1'));
    leases.scan(n.stderr.toString('latin1'));
  };
  const subst = (args: readonly string[]): string[] => args.map((a) => leases.substitute(a));
  const substStdin = (b: Buffer): Buffer => (b.includes('$L') ? Buffer.from(leases.substitute(b.toString('latin1')), 'latin1') : b);
  const stopBg = async (id: string): Promise<void> => {
    const bg = bgs.get(id)!;
    const out = await bg.proc.stop();
    if (!outputs.has(bg.index)) {
      outputs.set(bg.index, out);
      scan(bg.args, out);
    }
  };

  try {
    for (const step of c.steps) {
      switch (step.kind) {
        case 'run': {
          const args = subst(step.args);
          const proc = spawnEtcdctl(h, args, substStdin(step.stdin));
          const out = await proc.done;
          outputs.set(recorded.indexOf(step), out);
          scan(args, out);
          break;
        }
        case 'bg': {
          const args = subst(step.args);
          const proc = spawnEtcdctl(h, args, substStdin(step.stdin), BACKGROUND_TIMEOUT_MS, true);
          bgs.set(step.id, { proc, index: recorded.indexOf(step), args });
          break;
        }
        case 'wait': {
          const bg = bgs.get(step.id)!;
          const ok = await bg.proc.waitLines(step.lines, WAIT_TIMEOUT_MS);
          const got = bg.proc.stdoutSoFar();
          if (!ok) {
            const why = bg.proc.exited() ? 'the process exited first' : `gave up after ${WAIT_TIMEOUT_MS} ms`;
            notes.push(`line ${step.line}: @wait ${step.id} ${step.lines}: ${why}`);
          }
          // Only the awaited lines: anything after them may or may not have arrived yet.
          scan(bg.args, { stdout: firstLines(got, step.lines), stderr: Buffer.alloc(0), code: 0, signal: null, timedOut: false });
          break;
        }
        case 'kill':
          await stopBg(step.id);
          break;
        case 'sleep':
          await sleep(step.ms);
          break;
        case 'until': {
          const args = subst(step.args);
          const deadline = Date.now() + WAIT_TIMEOUT_MS;
          for (;;) {
            const out = await spawnEtcdctl(h, args, Buffer.alloc(0)).done;
            if (nonEmptyLines(out.stdout) >= step.lines) break;
            if (Date.now() > deadline) {
              notes.push(`line ${step.line}: @until ${step.lines}: gave up after ${WAIT_TIMEOUT_MS} ms`);
              break;
            }
            await sleep(UNTIL_INTERVAL_MS);
          }
          break;
        }
      }
    }
  } catch (e) {
    notes.push(`error: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    const running = [...bgs.entries()].filter(([, bg]) => !outputs.has(bg.index));
    if (running.some(([, bg]) => !bg.proc.exited())) await sleep(END_GRACE_MS);
    for (const [id] of running) await stopBg(id);
  }
  const list: RunOutput[] = [];
  for (let i = 0; i < recorded.length && outputs.has(i); i++) list.push(outputs.get(i)!);
  return { result: { outputs: list, notes }, leases };
}
