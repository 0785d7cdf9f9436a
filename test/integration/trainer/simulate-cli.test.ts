import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { POOLED_LAMBDAS } from '../../../agent/trainer/ridge.js';
import { DIST, SHARED_DATA, tempDir } from '../../helpers/paths.js';

// The real CLI end to end: convert the real GCD tarball, then `simulate --json --plot` on a small
// multi-client subset with a fixed seed. Real tfjs training, real FedAvg.
const tmp = tempDir('icosfl-simulate-');
test.after(() => tmp.cleanup());
const cli = join(DIST, 'simulate', 'cli.js');
const data = join(tmp.dir, 'gcd');

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, LOG_LEVEL: 'silent' } });
}

test('convert --from gcd writes one CSV per VM', () => {
  const r = run(['convert', '--from', 'gcd', join(SHARED_DATA, 'google-gcd-vms-cpu-mem', 'GCD_VMs.tar.gz'), '--out', data, '--limit', '16']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote 16 client files/);
});

let wasmJson = '';

test('federated beats persistence on every metric; JSON shape and plot', () => {
  const plot = join(tmp.dir, 'forecast.svg');
  const r = run(['run', '--data', data, '--metrics', 'cpu,mem', '--rounds', '8', '--json', '--plot', plot, '--backend', 'wasm']);
  assert.is(r.status, 0, r.stderr);
  wasmJson = r.stdout;
  const out = JSON.parse(r.stdout) as {
    rmse: Record<string, Record<string, number>>;
    mae: Record<string, Record<string, number>>;
    clients: number;
    fedavg_best_round: number;
    ridge_penalties: Record<string, number>;
    goal: { met: boolean; metrics: Record<string, { met: boolean; rmse: { vsPersistence: number }; mae: { vsPersistence: number }; rmseByStep: unknown[] }> };
  };
  assert.is(out.clients, 16);
  // The FedAvg round kept: 1…8 once the global model beats the untrained one (0 would mean it never did).
  assert.ok(Number.isInteger(out.fedavg_best_round) && out.fedavg_best_round >= 1 && out.fedavg_best_round <= 8, `best round ${out.fedavg_best_round}`);
  // The federated ridge model took part, one head per metric: each penalty is one the pooled fit tries.
  assert.equal(Object.keys(out.ridge_penalties), ['cpu', 'mem']);
  for (const [m, lambda] of Object.entries(out.ridge_penalties)) assert.ok(POOLED_LAMBDAS.includes(lambda), `${m} ridge penalty ${lambda}`);
  for (const method of ['persistence', 'local', 'federated', 'centralized', 'fedavg', 'fine_tuned', 'ridge']) {
    for (const m of ['cpu', 'mem']) {
      assert.ok(Number.isFinite(out.rmse[method]![m]) && Number.isFinite(out.mae[method]![m]), `${method} ${m}`);
    }
  }
  for (const m of ['cpu', 'mem']) {
    assert.ok(out.rmse.federated![m]! < out.rmse.persistence![m]!, `${m}: federated ${out.rmse.federated![m]} vs persistence ${out.rmse.persistence![m]}`);
    assert.ok(out.mae.federated![m]! < out.mae.persistence![m]!, `${m}: federated MAE ${out.mae.federated![m]} vs persistence ${out.mae.persistence![m]}`);
    // The goal check, per metric: RMSE, MAE and one entry per step ahead, as ratios to the baselines.
    const g = out.goal.metrics[m]!;
    assert.is(g.rmseByStep.length, 5);
    assert.ok(Math.abs(g.rmse.vsPersistence - (out.rmse.federated![m]! / out.rmse.persistence![m]! - 1)) < 1e-12);
    assert.type(g.met, 'boolean');
  }
  assert.is(out.goal.met, out.goal.metrics['cpu']!.met && out.goal.metrics['mem']!.met);
  assert.ok(existsSync(plot));
  const svg = readFileSync(plot, 'utf8');
  assert.match(svg, /^<svg /);
  assert.match(svg, /federated, 5 steps/);
});

test('the same simulation trained by the native C++ step gives the same errors as on WASM', () => {
  const r = run(['run', '--data', data, '--metrics', 'cpu,mem', '--rounds', '8', '--json', '--backend', 'native']);
  assert.is(r.status, 0, r.stderr);
  const native = JSON.parse(r.stdout) as { backend: string; rmse: Record<string, Record<string, number>>; mae: Record<string, Record<string, number>> };
  const wasm = JSON.parse(wasmJson) as typeof native;
  assert.is(native.backend, 'native');
  // Float summation order differs between the engines, and a different rounding can flip a
  // best-epoch choice, so equal means within 1 % here, not bit for bit.
  for (const measure of ['rmse', 'mae'] as const) {
    for (const method of ['local', 'federated', 'centralized']) {
      for (const m of ['cpu', 'mem']) {
        const a = wasm[measure][method]![m]!;
        const b = native[measure][method]![m]!;
        assert.ok(Math.abs(a - b) <= 0.01 * a, `${measure} ${method} ${m}: wasm ${a} native ${b}`);
      }
    }
  }
});

test('--ridge-features 0 leaves the ridge model out of the mixture and the report', () => {
  const r = run(['run', '--data', data, '--metrics', 'cpu,mem', '--rounds', '2', '--json', '--backend', 'native', '--ridge-features', '0']);
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rmse: Record<string, unknown>; ridge_penalties: Record<string, number>; options: { ridgeFeatures: number } };
  assert.equal(Object.keys(out.rmse), ['persistence', 'local', 'federated', 'centralized', 'fedavg', 'fine_tuned']);
  assert.equal(out.ridge_penalties, {});
  assert.is(out.options.ridgeFeatures, 0);
});

test('--clients N takes the first N CSV files and says how many there were', () => {
  const r = run(['run', '--data', data, '--metrics', 'cpu', '--clients', '3', '--rounds', '1', '--plaintext', '--backend', 'native']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout.split('\n')[0]!, /^3 clients \(0 skipped: too few windows; the first 3 of 16 CSV files, --clients N for more\)/);
  const all = run(['run', '--data', data, '--metrics', 'cpu', '--rounds', '1', '--plaintext', '--backend', 'native', '--json']);
  assert.is(all.status, 0, all.stderr);
  const out = JSON.parse(all.stdout) as { clients: number; csv_files: number };
  assert.equal([out.clients, out.csv_files], [16, 16]);
});

test('--mix-memory 0 fits the mixture shares once on the validation tail: only the federated row moves', () => {
  const args = ['run', '--data', data, '--metrics', 'cpu', '--rounds', '1', '--plaintext', '--backend', 'native', '--json'];
  type Out = { rmse: Record<string, Record<string, number>>; options: { mixMemory: number } };
  const recent = run(args);
  const once = run([...args, '--mix-memory', '0']);
  assert.is(recent.status, 0, recent.stderr);
  assert.is(once.status, 0, once.stderr);
  const [a, b] = [JSON.parse(recent.stdout) as Out, JSON.parse(once.stdout) as Out];
  assert.equal([a.options.mixMemory, b.options.mixMemory], [6, 0]);
  // The same training (deterministic on one backend and seed); only the shares differ.
  for (const method of ['persistence', 'local', 'centralized', 'fine_tuned', 'ridge']) assert.is(a.rmse[method]!['cpu'], b.rmse[method]!['cpu'], method);
  assert.is.not(a.rmse['federated']!['cpu'], b.rmse['federated']!['cpu']);
});

test('bad input: missing metric column names the file and line; usage errors exit 64', () => {
  const r = run(['run', '--data', data, '--metrics', 'cpu,disk']);
  assert.is(r.status, 65, r.stderr);
  assert.match(r.stderr, /\[DATA_INVALID\] .*vm_[0-9_]+\.csv:1: header has no 'disk' column/);
  const u = run(['run', '--metrics', 'cpu']);
  assert.is(u.status, 64);
  assert.match(u.stderr, /--data DIR is required/);
  const f = run(['run', '--data', data, '--metrics', 'cpu', '--ridge-features=-1']);
  assert.is(f.status, 64);
  assert.match(f.stderr, /--ridge-features must be an integer ≥ 0, got '-1'/);
  const mix = run(['run', '--data', data, '--metrics', 'cpu', '--mix-memory', 'all']);
  assert.is(mix.status, 64);
  assert.match(mix.stderr, /--mix-memory must be an integer ≥ 0, got 'all'/);
  const twice = run(['run', '--data', data, '--metrics', 'cpu,mem,cpu']);
  assert.is(twice.status, 64);
  assert.match(twice.stderr, /--metrics names 'cpu' twice/);
});

test.run();
