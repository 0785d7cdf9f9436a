import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadAgentConfig } from '../../../agent/config/load.js';
import { diffConfig } from '../../../agent/daemon/config-diff.js';
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

test.run();
