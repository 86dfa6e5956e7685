// `etcd gateway start`: etcd 3.4's L4 TCP proxy (proxy/tcpproxy). Each
// accepted connection is piped to one member's client address, picked round
// robin among the active ones; a member that refuses the dial is deactivated
// and the next one tried, and every retry delay the inactive ones are dialled
// again and come back when that succeeds. Bytes are not looked at: gRPC, the
// JSON gateway and TLS all pass through as they are.

import net from 'node:net';

export interface GatewayEndpoint { host: string; port: number }

export interface TcpGatewayLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface Remote { addr: string; host: string; port: number; inactive: boolean }

export class TcpGateway {
  private readonly remotes: Remote[];
  private pickCount = 0;
  private server: net.Server | null = null;
  private monitor: NodeJS.Timeout | null = null;
  private readonly open = new Set<net.Socket>();

  constructor(endpoints: GatewayEndpoint[], private readonly retryDelayMs: number, private readonly log: TcpGatewayLog) {
    this.remotes = endpoints.map((e) => ({ addr: `${e.host}:${e.port}`, host: e.host, port: e.port, inactive: false }));
  }

  /** Listens on host:port; resolves once listening (rejects if the address cannot be bound). */
  async listen(host: string, port: number): Promise<void> {
    const server = net.createServer((s) => this.serve(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => { server.off('error', reject); resolve(); });
    });
    this.log.info({ endpoints: this.remotes.map((r) => r.addr) }, 'ready to proxy client requests');
    this.monitor = setInterval(() => this.reactivate(), this.retryDelayMs);
  }

  /** The bound port (after listen). */
  get port(): number {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? a.port : 0;
  }

  async stop(): Promise<void> {
    if (this.monitor !== null) clearInterval(this.monitor);
    for (const s of this.open) s.destroy();
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Round robin over the remotes, skipping inactive ones; null when none is active. */
  private pick(): Remote | null {
    for (let i = 0; i < this.remotes.length; i++) {
      const r = this.remotes[this.pickCount % this.remotes.length]!;
      this.pickCount++;
      if (!r.inactive) return r;
    }
    return null;
  }

  private serve(inbound: net.Socket): void {
    this.open.add(inbound);
    inbound.on('close', () => this.open.delete(inbound));
    inbound.on('error', () => inbound.destroy());
    inbound.pause();
    const attempt = (): void => {
      const remote = this.pick();
      if (remote === null) { inbound.destroy(); return; }
      const out = net.connect({ host: remote.host, port: remote.port });
      const onDialError = (err: Error) => {
        remote.inactive = true;
        this.log.warn({ address: remote.addr, interval: `${this.retryDelayMs / 1000}s`, error: err.message }, 'deactivated endpoint');
        attempt();
      };
      out.once('error', onDialError);
      out.once('connect', () => {
        out.off('error', onDialError);
        this.open.add(out);
        out.on('close', () => { this.open.delete(out); inbound.destroy(); });
        out.on('error', () => out.destroy());
        inbound.on('close', () => out.destroy());
        inbound.pipe(out);
        out.pipe(inbound);
        inbound.resume();
      });
    };
    attempt();
  }

  private reactivate(): void {
    for (const r of this.remotes) {
      if (!r.inactive) continue;
      const probe = net.connect({ host: r.host, port: r.port });
      probe.once('connect', () => {
        probe.destroy();
        r.inactive = false;
        this.log.info({ address: r.addr }, 'activated');
      });
      probe.once('error', (err) => {
        this.log.warn({ address: r.addr, interval: `${this.retryDelayMs / 1000}s`, error: err.message }, 'failed to activate endpoint (stay inactive for another interval)');
      });
    }
  }
}
