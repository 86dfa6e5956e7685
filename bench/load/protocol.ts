// Messages between the runner (main thread) and the load worker threads.
import type { BenchConfig } from './config.js';

export interface WorkerInit {
  cfg: BenchConfig;
  threadIndex: number;
  threadCount: number;
  endpoints: string[];      // one per session of this thread
  clientConn: number[];     // this thread's clients -> session index
  rate: number;             // this thread's share of --rate (0 = closed loop)
  quota: number;            // measured requests for this thread (0 = duration mode)
}

export interface GoMsg { type: 'go'; t0: number; measureStart: number; measureEnd: number }
export interface StopMsg { type: 'stop' }
export type ToWorker = GoMsg | StopMsg;

export interface ReadyMsg { type: 'ready' }
export interface FailMsg { type: 'fail'; message: string }
export interface ProgressMsg { type: 'progress'; measured: number; errors: number }
export interface ResultMsg {
  type: 'result';
  histograms: string[];             // per op, compressed base64
  errors: number;
  errorsByCode: Record<string, number>;
  errorSamples: string[];
  counters: Record<string, number>;
  firstSend: number;                // absolute ms of the first measured send
  lastDone: number;                 // absolute ms of the last measured completion
  unfinished: number;               // requests still in flight at the drain timeout
  backlog: number;                  // open loop: scheduled requests never sent
}
export type FromWorker = ReadyMsg | FailMsg | ProgressMsg | ResultMsg;
