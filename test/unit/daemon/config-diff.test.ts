import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadAgentConfig } from '../../../agent/config/load.js';
import { diffConfig, restartEffects } from '../../../agent/daemon/config-diff.js';
import { FIXTURES } from '../../helpers/paths.js';

const base = () => loadAgentConfig({ configPath: join(FIXTURES, 'config', 'valid.toml'), env: {} });

test('an identical config changes nothing', () => {
  assert.equal(diffConfig(base(), base()), { live: [], restart: [] });
});

test('interval, log level, prometheus and trainer apply live; directories and ring layout need a restart', () => {
  const a = base();
  const b = base();
  b.sampler.interval_ms = 2000;
  b.agent.log_level = 'debug';
  b.prometheus.port = 9999;
  b.trainer.epochs = a.trainer.epochs + 1;
  b.sampler.metrics = ['load1'];
  b.sampler.ring_capacity = 64;
  b.agent.state_dir = '/elsewhere';
  const d = diffConfig(a, b);
  assert.equal(d.live.sort(), ['agent.log_level', 'prometheus.port', 'sampler.interval_ms', 'trainer.epochs']);
  assert.equal(d.restart.sort(), ['agent.state_dir', 'sampler.metrics', 'sampler.ring_capacity']);
});

test('the replay keys need a restart (the worker reads the file and sends its history at start)', () => {
  const a = base();
  const b = base();
  b.sampler.replay_file = '/data/gcd/vm.csv';
  b.sampler.replay_history = 0.5;
  b.sampler.replay_hold = true;
  const d = diffConfig(a, b);
  assert.equal(d.live, []);
  assert.equal(d.restart.sort(), ['sampler.replay_file', 'sampler.replay_history', 'sampler.replay_hold']);
});

test('a smaller ring_capacity says a restart migrates the newest samples that fit', () => {
  const a = base();
  const b = base();
  a.sampler.ring_capacity = 10000;
  b.sampler.ring_capacity = 5000;
  assert.equal(restartEffects(a, b, 8123), ['sampler.ring_capacity 10000 → 5000: capacity 16384 → 8192: a restart migrates all 8123 samples']);
  assert.equal(restartEffects(a, b, 12000), ['sampler.ring_capacity 10000 → 5000: capacity 16384 → 8192: a restart migrates the newest 8192 of 12000 samples']);
});

test('a changed metric list says which channels are dropped and added', () => {
  const a = base();
  const b = base();
  a.sampler.metrics = ['cpu_util', 'mem_used', 'load1'];
  b.sampler.metrics = ['load1', 'cpu_util', 'net_rx'];
  const [effect, ...rest] = restartEffects(a, b, 40);
  assert.equal(rest, []);
  assert.is(effect, 'sampler.metrics [cpu_util, mem_used, load1] → [load1, cpu_util, net_rx]: drops mem_used; adds net_rx (missing until sampled): a restart migrates all 40 samples');
  b.sampler.metrics = ['net_rx'];
  assert.match(restartEffects(a, b, 40)[0]!, /no channel in common, so a restart keeps the 40 samples' ring as metrics\.ring\.unmigrated and starts empty/);
});

test('a capacity that rounds to the same power of two changes no file; directories say what moves', () => {
  const a = base();
  const b = base();
  a.sampler.ring_capacity = 10000;
  b.sampler.ring_capacity = 12000;
  b.agent.state_dir = '/srv/icosfl';
  assert.equal(restartEffects(a, b, 5), [
    'sampler.ring_capacity 10000 → 12000: the ring file does not change (both capacities round up to 16384)',
    `agent.state_dir ${a.agent.state_dir} → /srv/icosfl: the ring and model files are opened there; nothing is moved from the old directory`,
  ]);
});

test.run();
