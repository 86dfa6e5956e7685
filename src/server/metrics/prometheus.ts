import client from 'prom-client';
import { SharedHistogram, type SharedHistogramLayout } from '../../common/shared-histogram.js';
import { formatId } from '../../common/ids.js';
import type { Member } from '../../member/member.js';
import { ETCD_API_VERSION } from '../../common/version.js';
import { GRPC_CODE_NAMES, type CallCounters } from '../../grpc/call-counters.js';

/** Renders a worker's shared histogram in the Prometheus text format. */
function renderHistogram(name: string, help: string, layout: SharedHistogramLayout): string {
  const h = new SharedHistogram(layout).read();
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const b of h.buckets) lines.push(`${name}_bucket{le="${b.le === Infinity ? '+Inf' : String(b.le)}"} ${b.count}`);
  lines.push(`${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
  return lines.join('\n') + '\n';
}

/** go-grpc-prometheus's two counters, every method and code listed from zero as it pre-registers them. */
function renderCalls(calls: CallCounters): string {
  const started = ['# HELP grpc_server_started_total Total number of RPCs started on the server.', '# TYPE grpc_server_started_total counter'];
  const handled = ['# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.', '# TYPE grpc_server_handled_total counter'];
  for (const m of calls.all()) {
    const labels = `grpc_method="${m.method}",grpc_service="${m.service}",grpc_type="${m.type}"`;
    started.push(`grpc_server_started_total{${labels}} ${m.started}`);
    for (let code = 0; code < GRPC_CODE_NAMES.length; code++) {
      handled.push(`grpc_server_handled_total{grpc_code="${GRPC_CODE_NAMES[code]}",${labels}} ${m.handled[code]}`);
    }
  }
  return started.join('\n') + '\n' + handled.join('\n') + '\n';
}

/**
 * /metrics with etcd's metric names (ETCD-FACTS.md 1.4) where etcd has one, via prom-client;
 * `calls`: the gRPC server's per-method counters (none on a metrics-only listener that has no server).
 */
export function createMetrics(member: Member, calls: CallCounters | null = null): { render(): Promise<string>; contentType: string } {
  const reg = new client.Registry();
  client.collectDefaultMetrics({ register: reg });
  const gauge = (name: string, help: string, value: () => number, labels?: Record<string, string>) =>
    new client.Gauge({
      name, help, registers: [reg], labelNames: labels ? Object.keys(labels) : [],
      collect() { if (labels) this.set(labels, value()); else this.set(value()); },
    });
  // A total kept by the member, read when scraped (a prom-client Counter cannot be set).
  const counter = (name: string, help: string, value: () => number) =>
    new client.Counter({
      name, help, registers: [reg],
      collect() { this.reset(); this.inc(value()); },
    });
  gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', () => (member.isLeaderKnown() ? 1 : 0));
  gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', () => (member.isLeader() ? 1 : 0));
  gauge('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.', () => (member.isLearnerSelf ? 1 : 0));
  counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.', () => member.leaderChanges);
  counter('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.', () => member.proposalsFailed);
  gauge('etcd_server_version', 'Which version is running. 1 for \'server_version\' label with current version.', () => 1, { server_version: ETCD_API_VERSION });
  gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.', () => member.quotaBytes);
  gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', () => member.commitIndex);
  gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', () => member.appliedIdx);
  gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', () => member.pendingCount);
  gauge('etcd_server_id', 'Server or member ID in hexadecimal format. 1 for \'server_id\' label with current ID.', () => 1, { server_id: formatId(member.memberId) });
  gauge('etcd_cluster_version', 'Which version is running. 1 for \'cluster_version\' label with current cluster version', () => 1, { cluster_version: ETCD_API_VERSION.split('.').slice(0, 2).join('.') });
  gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', () => member.dbSizeBytes());
  gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', () => member.revision);
  gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', () => member.compactRevision);
  gauge('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.', () => member.watcherTotal);
  gauge('etcd_debugging_auth_revision', 'The current revision of auth store.', () => member.auth.revision);
  return {
    contentType: reg.contentType,
    async render() {
      return (await reg.metrics()) +
        renderHistogram('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', member.fsyncHistogram) +
        renderHistogram('etcd_disk_backend_commit_duration_seconds', 'The latency distributions of commit called by backend.', member.commitHistogram) +
        (calls !== null ? renderCalls(calls) : '');
    },
  };
}
