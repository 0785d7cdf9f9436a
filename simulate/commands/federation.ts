import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineCommand } from '../../common/cli.js';
import { controlRequest } from '../../common/control/client.js';
import { generateFederation, writeFederation } from '../../common/crypto/index.js';
import { COORDINATOR_PUBLIC_KEY_FILE, COORDINATOR_SIGNING_KEY_FILE, loadOrCreateSigningKey, writeSigningKeyPair } from '../../common/crypto/signing-keys.js';
import { publicKeyText } from '../../common/protocol/signature.js';
import { enrollAgent } from '../../coordinator/enrolment.js';
import { DEFAULT_FEDERATION_MODEL } from '../../common/protocol/federation-model.js';
import { prepareOutputDir } from '../output-paths.js';
import { IcosflError } from '../../common/errors.js';
import { outputError } from '../../common/system-errors.js';

/**
 * The main job (`npm start`): a real federation on this machine with nothing to set up. A
 * coordinator (`icosfl-coordinator serve`, its embedded broker on a free loopback port) and N
 * agents (`icosfl-agent run`), each its own process, with fresh keys in a temporary directory.
 * The agents replay real traces shipped in data/gcd/ (Google cluster VMs, CC-BY 4.0) at an
 * accelerated clock: 80 % of each trace is history at start, the rest streams once the
 * federated model is installed and is forecast live. --live samples this machine instead. It
 * prints each round as it ends and, at the end, each agent's live forecast error against
 * persistence's.
 */
const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const DIST = join(ROOT, 'dist');
const TRACES = join(ROOT, 'data', 'gcd');
const METRICS = ['cpu_busy_pct', 'mem_used_pct'];

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

const toml = (sections: Record<string, Record<string, unknown>>) =>
  Object.entries(sections)
    .map(([name, kv]) => `[${name}]\n${Object.entries(kv).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}\n`)
    .join('\n');

function int(raw: unknown, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`--${name} must be an integer from ${min} to ${max}, got '${String(raw)}'`);
  return v;
}

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Each process's log goes to its log.jsonl, as JSON lines whatever $LOG_FORMAT says. */
function start(name: string, args: string[], logFile: string): Proc {
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', LOG_FORMAT: 'json' } });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { name, child, exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const command = defineCommand({
  summary: 'run a real federation on this machine: a coordinator and N agent processes over the embedded broker, encrypted rounds, live forecast accuracy',
  flags: {
    agents: { type: 'string', value: 'N', description: 'agent processes, 2 to the number of traces in data/gcd (16 with --live)', default: '4' },
    rounds: { type: 'string', value: 'N', description: 'FedAvg rounds of the session, 1 to 1000', default: String(DEFAULT_FEDERATION_MODEL.rounds) },
    'interval-ms': { type: 'string', value: 'MS', description: "the agents' sampling interval, 50 to 60000", defaultText: '200 (1000 with --live)' },
    live: { type: 'boolean', description: 'sample this machine instead of replaying the traces in data/gcd' },
    plaintext: { type: 'boolean', description: 'send weights unencrypted (no keys): the reference for what encryption costs' },
    keep: { type: 'string', value: 'DIR', description: 'keep configs, state and logs in DIR', defaultText: 'a temporary directory, removed at the end' },
    'timeout-s': { type: 'string', value: 'S', description: 'give up after S seconds, 10 to 86400', default: '600' },
  },
  async run({ values }) {
    const traces = readdirSync(TRACES).filter((f) => f.endsWith('.csv')).sort();
    const agents = int(values.agents, 'agents', 4, 2, values.live ? 16 : traces.length);
    const rounds = int(values.rounds, 'rounds', DEFAULT_FEDERATION_MODEL.rounds, 1, 1000);
    const intervalMs = int(values['interval-ms'], 'interval-ms', values.live ? 1000 : 200, 50, 60_000);
    const timeoutS = int(values['timeout-s'], 'timeout-s', 600, 10, 86_400);
    if (values.keep !== undefined) prepareOutputDir('--keep', values.keep);
    const dir = values.keep ? resolve(values.keep) : mkdtempSync(join(tmpdir(), 'icosfl-federation-'));
    const out = (line: string) => process.stdout.write(line + '\n');
    const procs: Proc[] = [];
    const deadline = Date.now() + timeoutS * 1000;
    try {
      // Keys: agents share the CKKS secret key; the coordinator gets the parameters only.
      const federation = `local-${Date.now().toString(36)}`;
      const keys = join(dir, 'keys');
      if (!values.plaintext) {
        const fed = await generateFederation({ federationId: federation });
        try {
          writeFederation(keys, fed);
        } catch (cause) {
          throw outputError(keys, cause, values.keep ? '--keep' : '', values.keep ? 'a --keep DIR from an earlier run holds its keys: choose a new one' : undefined);
        }
      }
      // Signed messages, set up as an operator would: the coordinator's key pair, each agent's key enrolled.
      writeSigningKeyPair(join(keys, COORDINATOR_SIGNING_KEY_FILE), join(keys, COORDINATOR_PUBLIC_KEY_FILE));
      const enrolled = join(keys, 'enrolled-agents.json');
      const port = await freePort();
      const httpPort = await freePort();
      const coordDir = join(dir, 'coordinator');
      mkdirSync(coordDir, { recursive: true });
      writeFileSync(
        join(coordDir, 'coordinator.toml'),
        toml({
          coordinator: { state_dir: join(coordDir, 'state'), runtime_dir: join(coordDir, 'run'), keys: join(keys, 'coordinator.json'), codec: values.plaintext ? 'plaintext' : 'ckks', signing_key: join(keys, COORDINATOR_SIGNING_KEY_FILE), enrolled_agents: enrolled },
          broker: { url: 'embedded', embedded_host: '127.0.0.1', embedded_port: port },
          federation: { ...(values.plaintext ? { id: federation } : {}), min_agents: agents, round_timeout_s: 120, ack_timeout_s: 60, round_interval_s: 0.2, sessions: 0, session_interval_s: 86400, presence_timeout_s: 60 },
          model: { metrics: METRICS, rounds },
          http: { enabled: true, host: '127.0.0.1', port: httpPort },
        }),
      );
      const coordinator = start('coordinator', [join(DIST, 'coordinator', 'cli.js'), 'serve', '--config', join(coordDir, 'coordinator.toml')], join(coordDir, 'log.jsonl'));
      procs.push(coordinator);
      const coordSocket = join(coordDir, 'run', 'coordinator.sock');
      const agentSockets: string[] = [];
      for (let i = 0; i < agents; i++) {
        const a = join(dir, `agent-${i}`);
        mkdirSync(a, { recursive: true });
        enrollAgent(enrolled, `agent-${i}`, publicKeyText(loadOrCreateSigningKey(join(a, 'state', 'agent-signing.key')).key));
        writeFileSync(
          join(a, 'agent.toml'),
          toml({
            agent: { state_dir: join(a, 'state'), runtime_dir: join(a, 'run') },
            sampler: values.live
              ? { interval_ms: intervalMs, ring_capacity: 65536 }
              : { interval_ms: intervalMs, metrics: METRICS, ring_capacity: 4096, replay_file: join(TRACES, traces[i]!), replay_history: 0.8, replay_hold: true },
            trainer: { forecast_interval_s: intervalMs / 1000 },
            federation: { enabled: true, broker: `mqtt://127.0.0.1:${port}`, keys: join(keys, 'agent.json'), agent_id: `agent-${i}`, coordinator_key: join(keys, COORDINATOR_PUBLIC_KEY_FILE), codec: values.plaintext ? 'plaintext' : 'ckks', ...(values.plaintext ? { federation_id: federation } : {}), presence_interval_s: 5, reconnect_min_ms: 200, reconnect_max_ms: 2000 },
          }),
        );
        procs.push(start(`agent-${i}`, [join(DIST, 'agent', 'cli.js'), 'run', '--config', join(a, 'agent.toml')], join(a, 'log.jsonl')));
        agentSockets.push(join(a, 'run', 'agent.sock'));
      }
      out(`federation ${federation}: coordinator and ${agents} agents on 127.0.0.1:${port} (embedded broker), ${values.plaintext ? 'plaintext' : 'CKKS-encrypted'} updates, state and logs in ${dir}`);
      out(`status page http://127.0.0.1:${httpPort}/ and Prometheus metrics at /metrics while it runs`);
      out(`agents ${values.live ? `sample this machine every ${intervalMs} ms` : `replay Google cluster VMs from data/gcd (${traces.slice(0, agents).join(', ')}), one 5-minute sample every ${intervalMs} ms`}`);
      out('');
      out(['round', 'session', 'phase', 'agents', 'bytes in', 'bytes out', 'seconds', 'val. loss vs persistence'].map((h, i) => (i === 0 ? h.padEnd(6) : h.padStart(i === 7 ? 26 : 10))).join(' '));

      const alive = () => {
        for (const p of procs) if (p.child.exitCode !== null) throw new IcosflError('SIMULATION_FAILED', `${p.name} exited with code ${p.child.exitCode}; see its log in ${join(dir, p.name, 'log.jsonl')}${values.keep ? '' : ' (pass --keep DIR to keep it)'}`);
      };
      const ask = async (socket: string, cmd: string) => controlRequest(socket, { cmd }, 3000, { name: 'icosfl process', unit: 'icosfl' });
      let printed = 0;
      let finished = false;
      while (!finished) {
        if (Date.now() > deadline) throw new IcosflError('SIMULATION_FAILED', `no finished session within --timeout-s ${timeoutS}; raise it, or look at the logs with --keep DIR`);
        alive();
        await sleep(300);
        let rows: { round: number; session: number; phase: string; step: number; outcome: string; reason: string | null; participants: number; acks: number; bytesIn: number; bytesOut: number; announcedAt: number; closedAt: number; score: number | null }[];
        try {
          rows = ((await ask(coordSocket, 'rounds')) as { rounds: typeof rows }).rounds;
        } catch {
          continue; // not up yet
        }
        for (const r of rows.filter((x) => x.round > printed)) {
          const phase = r.phase === 'fedavg' ? `fedavg ${r.step}/${rounds}` : r.phase;
          const outcome = r.outcome === 'completed' ? '' : ` (${r.outcome}: ${r.reason})`;
          const score = r.score === null ? '—' : r.score.toFixed(4);
          out([String(r.round).padEnd(6), String(r.session).padStart(10), phase.padStart(10), String(r.phase === 'final' ? r.acks : r.participants).padStart(10), String(r.bytesIn).padStart(10), String(r.bytesOut).padStart(10), ((r.closedAt - r.announcedAt) / 1000).toFixed(2).padStart(10), score.padStart(26)].join(' ') + outcome);
          if (r.phase === 'final' && r.outcome === 'completed') finished = true;
          printed = r.round;
        }
      }

      // Each agent now forecasts live with its federated model; the replays stream their last 20 %.
      out('');
      out(values.live ? 'federated models installed; forecasting this machine live for 60 s' : 'federated models installed; the agents now stream the rest of their traces and forecast each step live');
      const liveUntil = Date.now() + 60_000;
      type AgentStatus = { sampling?: { replay?: { done: boolean } | null }; federation?: { forecast_score?: Record<string, { count: number; rmse: number; mae: number; persistence_rmse: number; persistence_mae: number }> | null } };
      let statuses: AgentStatus[] = [];
      for (;;) {
        if (Date.now() > deadline) throw new IcosflError('SIMULATION_FAILED', `the replays did not finish within --timeout-s ${timeoutS}; raise it, or look at the logs with --keep DIR`);
        alive();
        await sleep(500);
        statuses = (await Promise.all(agentSockets.map((s) => ask(s, 'status').catch(() => ({}))))) as AgentStatus[];
        if (values.live ? Date.now() > liveUntil : statuses.every((s) => s.sampling?.replay?.done)) break;
      }
      await sleep(2 * intervalMs + 500);
      statuses = (await Promise.all(agentSockets.map((s) => ask(s, 'status').catch(() => ({}))))) as AgentStatus[];
      out('');
      out('live forecast error, all 5 steps ahead (federated model vs persistence, each agent on its own data)');
      out(['agent', 'metric', 'forecasts', 'RMSE', 'persistence', 'MAE', 'persistence', 'RMSE vs persistence'].map((h, i) => (i < 2 ? h.padEnd(14) : h.padStart(12))).join(' '));
      const gains: number[] = [];
      statuses.forEach((s, i) => {
        for (const [metric, sc] of Object.entries(s.federation?.forecast_score ?? {})) {
          const gain = sc.rmse / sc.persistence_rmse - 1;
          if (Number.isFinite(gain)) gains.push(gain);
          const pct = Number.isFinite(gain) ? `${gain >= 0 ? '+' : '−'}${Math.abs(gain * 100).toFixed(1)} %` : '—';
          out([`agent-${i}`.padEnd(14), metric.padEnd(14), String(sc.count).padStart(12), sc.rmse.toPrecision(4).padStart(12), sc.persistence_rmse.toPrecision(4).padStart(12), sc.mae.toPrecision(4).padStart(12), sc.persistence_mae.toPrecision(4).padStart(12), pct.padStart(12)].join(' '));
        }
      });
      if (gains.length > 0) {
        const mean = gains.reduce((a, b) => a + b, 0) / gains.length;
        out(`mean RMSE against persistence over ${gains.length} agent-metrics: ${mean >= 0 ? '+' : '−'}${Math.abs(mean * 100).toFixed(1)} %`);
      }
      return 0;
    } finally {
      for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
      await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(8000)]);
      for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
      if (!values.keep) rmSync(dir, { recursive: true, force: true });
    }
  },
});
export default command;

