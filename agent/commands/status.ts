import { defineCommand } from '../../common/cli.js';
import { CONFIG_FLAGS, JSON_FLAG, loadOptionsOf, SOCKET_FLAG } from '../config/flags.js';
import { loadAgentConfig } from '../config/load.js';
import { controlRequest, findControlSocket } from '../daemon/control-client.js';

/** Loose view of the daemon's status answer (daemon.ts status()); absent parts print as '-'. */
interface StatusAnswer {
  pid: number;
  ready: boolean;
  healthy: boolean;
  uptime_s: number;
  config_file: string | null;
  last_reload: { at: string; ok: boolean; message: string } | null;
  ring?: { path: string; size: number; capacity: number; fill: number };
  sampling?: {
    interval_ms: number;
    samples_stored: number;
    skipped_slots: number;
    last_sample_age_ms: number | null;
    jitter_ms: { n: number; p50: number | null; p99: number | null; max: number | null };
  };
  collectors: { name: string; on: boolean; ok: boolean | null; last_duration_ms: number | null; failures: number; last_error: string | null }[];
  prometheus: { url: string } | { url: null; error: string } | null;
  trainer: Record<string, unknown>;
  federation?: Record<string, unknown>;
  storage?: { degraded: boolean; failing: { kind: string; path: string; errno: string; count: number; at: string }[]; log_lines_dropped: number };
}

const ms = (v: number | null | undefined) => (v == null ? '-' : `${v.toFixed(1)} ms`);

function duration(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${m}m` : m ? `${m}m${s % 60}s` : `${s}s`;
}

/** The training job's status is its own (agent/trainer/job.ts); the usual fields are picked out. */
function formatTrainer(t: Record<string, unknown>): string {
  if (t.enabled === false) return typeof t.reason === 'string' ? `off (${t.reason})` : 'off';
  if (t.error) return `FAILED to start: ${String(t.error)}`;
  if (t.running !== true) return typeof t.starts_at_samples === 'number' ? `waiting until the ring holds ${t.starts_at_samples} samples` : 'not running';
  const parts = [`state ${String(t.state ?? '?')}`, `backend ${String(t.backend ?? '-')}`, `model version ${String(t.version ?? '-')}`, `round ${String(t.round ?? '-')}`];
  if (t.lastError) parts.push(`last error: ${String(t.lastError)}`);
  return parts.join(', ');
}

/** The federation job's status (agent/federation/job.ts): broker, round joined, model installed. */
function formatFederation(f: Record<string, unknown> | undefined): string {
  if (!f || f.enabled === false) return 'off';
  if (f.running === false) return f.error ? `FAILED to start: ${String(f.error)}` : 'starting';
  const client = (f.client ?? {}) as Record<string, unknown>;
  const model = f.model as { session: number; round: number; best_round: number } | null;
  const parts = [
    `${String(f.agent)} in ${String(f.federation)} via ${String(f.broker)} (${f.connected ? 'connected' : `DISCONNECTED${f.connect_error ? `: ${String(f.connect_error)}` : ''}`})`,
    `presence ${String(client.presence ?? '-')}`,
    `last round joined ${String(client.last_round_joined ?? '-')}`,
    `last global installed ${String(client.last_global_installed ?? '-')}`,
    model ? `model of session ${model.session} (round ${model.round}, best FedAvg round ${model.best_round})` : 'no federated model yet',
  ];
  const keys = Array.isArray(f.keys) ? (f.keys as { keyId: string | null; epoch: number | null }[]).filter((k) => k.keyId) : [];
  if (keys.length > 0 || f.key_epoch !== undefined) {
    parts.push(`key epoch ${f.key_epoch === null || f.key_epoch === undefined ? '-' : String(f.key_epoch)} (holds ${keys.map((k) => `epoch ${String(k.epoch)} ${String(k.keyId).slice(0, 12)}`).join(', ') || 'no key'})`);
  }
  if (client.last_error) parts.push(`last error: ${String(client.last_error)}`);
  parts.push(formatPrivacy(f.privacy as Record<string, unknown> | undefined));
  return parts.join(', ');
}

/** The federation's privacy part: ε spent of the budget, per round, and why the agent withholds. */
export function formatPrivacy(p: Record<string, unknown> | undefined): string {
  if (!p || p.enabled !== true) return 'differential privacy off';
  const num = (v: unknown) => (typeof v === 'number' ? v.toFixed(3) : '?');
  const head = `DP ε ${num(p.epsilon)} of ${String(p.epsilon_budget)} (δ ${String(p.delta)}, ε ${num(p.epsilon_per_round)} per round, ${String(p.rounds_charged)} rounds charged, ${String(p.rounds_contributed)} contributed since start)`;
  if (p.state === 'budget-spent') return `${head}: BUDGET SPENT, no more updates (forecasting with the current model)`;
  if (p.state === 'state-unusable') return `${head}: NOT CONTRIBUTING: ${String(p.reason)}`;
  return head;
}

export function formatStatus(st: StatusAnswer): string {
  const rows: [string, string][] = [];
  rows.push(['daemon', `pid ${st.pid}, up ${duration(st.uptime_s)}, ${st.ready ? 'ready' : 'starting'}, sampling ${st.healthy ? 'healthy' : 'STALLED'}`]);
  rows.push(['config', st.config_file ?? 'defaults (no file)']);
  if (st.ring) rows.push(['ring', `${st.ring.path}: ${st.ring.size} / ${st.ring.capacity} samples (${(st.ring.fill * 100).toFixed(1)} % full)`]);
  const s = st.sampling;
  if (s) {
    rows.push(['sampling', `every ${s.interval_ms} ms, ${s.samples_stored} stored since start, last ${s.last_sample_age_ms == null ? '-' : `${(s.last_sample_age_ms / 1000).toFixed(1)} s`} ago, ${s.skipped_slots} slots skipped`]);
    rows.push(['jitter', `p50 ${ms(s.jitter_ms.p50)}, p99 ${ms(s.jitter_ms.p99)}, max ${ms(s.jitter_ms.max)} (last ${s.jitter_ms.n} samples)`]);
  }
  for (const c of st.collectors) {
    const state = !c.on ? 'off' : c.ok === null ? 'on, no sample yet' : c.ok ? `on, ok (${ms(c.last_duration_ms)})` : `on, FAILING (${c.failures} failures; ${c.last_error ?? ''})`;
    rows.push([`  ${c.name}`, state]);
  }
  if (st.storage) {
    const f = st.storage.failing;
    const dropped = st.storage.log_lines_dropped > 0 ? `; ${st.storage.log_lines_dropped} log lines dropped` : '';
    rows.push(['storage', f.length === 0 ? `ok${dropped}` : `DEGRADED: ${f.map((x) => `${x.kind} ${x.path} ${x.errno} (${x.count} failed writes, last ${x.at})`).join('; ')}${dropped}`]);
  }
  rows.push(['prometheus', st.prometheus ? (st.prometheus.url ?? `FAILED: ${'error' in st.prometheus ? st.prometheus.error : '?'}`) : 'off']);
  rows.push(['trainer', formatTrainer(st.trainer)]);
  rows.push(['federation', formatFederation(st.federation)]);
  if (st.last_reload) rows.push(['last reload', `${st.last_reload.at} ${st.last_reload.ok ? 'ok' : 'REJECTED'}: ${st.last_reload.message}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

const command = defineCommand({
  summary: 'ask the running daemon over its control socket: ring fill, last sample, jitter, collectors, trainer, federation',
  flags: { ...CONFIG_FLAGS, ...SOCKET_FLAG, ...JSON_FLAG },
  async run({ values }) {
    const socket = typeof values.socket === 'string' ? values.socket : findControlSocket(loadAgentConfig(loadOptionsOf(values)).agent.runtime_dir);
    const result = (await controlRequest(socket, { cmd: 'status' })) as StatusAnswer;
    process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatStatus(result));
    return 0;
  },
});
export default command;
