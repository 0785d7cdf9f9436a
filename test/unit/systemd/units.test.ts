// The shipped units as systemd itself reads them: `systemd-analyze verify` must print nothing
// and `systemd-analyze security --offline=true` must score the agent at exposure ≤ 2.0.
// Off PID 1, verify exits 0 even on parse errors, so these tests judge its output.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';

const SYSTEMD = join(REPO_ROOT, 'systemd');
const UNITS = ['icosfl-agent.service', 'icosfl-coordinator.service'];
const { dir, cleanup } = tempDir('icosfl-units-');
test.after(cleanup);

/**
 * Copies the units into `into`, pointing ExecStart at executables that exist (verify rejects a
 * missing binary), and optionally the GPU drop-in where systemd looks for drop-ins.
 */
function stageUnits(into: string, opts: { gpu?: boolean; signing?: boolean; extraAgentLine?: string } = {}): string {
  const bin = join(into, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const name of ['icosfl-agent', 'icosfl-coordinator']) {
    writeFileSync(join(bin, name), '#!/bin/sh\n');
    chmodSync(join(bin, name), 0o755);
  }
  for (const unit of UNITS) {
    let text = readFileSync(join(SYSTEMD, unit), 'utf8').replaceAll('/usr/local/bin/', `${bin}/`);
    if (opts.extraAgentLine && unit === 'icosfl-agent.service') text = text.replace('[Service]\n', `[Service]\n${opts.extraAgentLine}\n`);
    writeFileSync(join(into, unit), text);
  }
  if (opts.gpu) {
    mkdirSync(join(into, 'icosfl-agent.service.d'), { recursive: true });
    copyFileSync(join(SYSTEMD, 'drop-ins', 'gpu-nvidia.conf'), join(into, 'icosfl-agent.service.d', '50-gpu-nvidia.conf'));
  }
  if (opts.signing) {
    mkdirSync(join(into, 'icosfl-coordinator.service.d'), { recursive: true });
    copyFileSync(join(SYSTEMD, 'drop-ins', 'coordinator-signing-key.conf'), join(into, 'icosfl-coordinator.service.d', '50-signing-key.conf'));
  }
  return into;
}

function verify(unitDir: string, units: string[]): string {
  const r = spawnSync('systemd-analyze', ['verify', ...units.map((u) => `./${u}`)], { cwd: unitDir, encoding: 'utf8' });
  if (r.error) throw new Error(`systemd-analyze could not run (apt-get install systemd): ${r.error.message}`);
  return (r.stdout + r.stderr).trim();
}

function exposure(unitDir: string, unit: string): number {
  const out = execFileSync('systemd-analyze', ['security', '--offline=true', `./${unit}`], { cwd: unitDir, encoding: 'utf8' });
  const m = out.match(/Overall exposure level for \S+: ([\d.]+)/);
  assert.ok(m, `no exposure level in:\n${out}`);
  return Number(m![1]);
}

test('systemd-analyze verify prints nothing for both units', () => {
  const out = verify(stageUnits(join(dir, 'plain')), UNITS);
  assert.is(out, '', `verify complained:\n${out}`);
});

test('systemd-analyze verify prints nothing for the agent with the NVIDIA drop-in', () => {
  const out = verify(stageUnits(join(dir, 'gpu'), { gpu: true }), ['icosfl-agent.service']);
  assert.is(out, '', `verify complained:\n${out}`);
});

test('systemd-analyze verify prints nothing for the coordinator with the signing-key credential drop-in', () => {
  const out = verify(stageUnits(join(dir, 'signing'), { signing: true }), ['icosfl-coordinator.service']);
  assert.is(out, '', `verify complained:\n${out}`);
});

test('the output check catches a unit systemd would reject', () => {
  const out = verify(stageUnits(join(dir, 'broken'), { extraAgentLine: 'WatchdogSecs=30s' }), ['icosfl-agent.service']);
  assert.match(out, /Unknown key 'WatchdogSecs'/);
});

test('agent exposure ≤ 2.0 (with and without the GPU drop-in), coordinator ≤ 2.0', () => {
  const agent = exposure(join(dir, 'plain'), 'icosfl-agent.service');
  const agentGpu = exposure(join(dir, 'gpu'), 'icosfl-agent.service');
  const coordinator = exposure(join(dir, 'plain'), 'icosfl-coordinator.service');
  const coordinatorSigning = exposure(join(dir, 'signing'), 'icosfl-coordinator.service');
  console.log(`systemd-analyze security --offline=true: icosfl-agent ${agent}, with GPU drop-in ${agentGpu}, icosfl-coordinator ${coordinator}, with the signing-key drop-in ${coordinatorSigning}`);
  assert.ok(coordinatorSigning <= coordinator, `the credential drop-in raised the coordinator's exposure ${coordinator} → ${coordinatorSigning}`);
  assert.ok(agent <= 2.0, `agent exposure ${agent} > 2.0`);
  assert.ok(agentGpu <= 2.0, `agent exposure with the GPU drop-in ${agentGpu} > 2.0`);
  assert.ok(coordinator <= 2.0, `coordinator exposure ${coordinator} > 2.0`);
});

test('no unit sets MemoryDenyWriteExecute= (V8 needs W+X) or ExecPaths=; the agent is Type=notify with a watchdog', () => {
  for (const unit of UNITS) {
    const text = readFileSync(join(SYSTEMD, unit), 'utf8');
    assert.not.match(text, /^\s*MemoryDenyWriteExecute\s*=/m, unit);
    // ExecPaths= bind mounts came out read-write on systemd 252, undoing ProtectSystem=strict.
    assert.not.match(text, /^\s*ExecPaths\s*=/m, unit);
    assert.match(text, /^ReadOnlyPaths=\/etc\/icosfl$/m, `${unit}: ConfigurationDirectory= alone is writable`);
  }
  const agent = readFileSync(join(SYSTEMD, 'icosfl-agent.service'), 'utf8');
  for (const line of ['Type=notify', 'Restart=on-failure', 'StateDirectory=icosfl', 'RuntimeDirectory=icosfl', 'ConfigurationDirectory=icosfl', 'User=icosfl', 'CapabilityBoundingSet=']) {
    assert.match(agent, new RegExp(`^${line}$`, 'm'), `agent unit lacks ${line}`);
  }
  assert.match(agent, /^WatchdogSec=\d+s$/m);
});

test('the coordinator is Type=notify with a 30 s watchdog, runs `serve`, and keeps its sandbox', () => {
  const unit = readFileSync(join(SYSTEMD, 'icosfl-coordinator.service'), 'utf8');
  for (const line of ['Type=notify', 'NotifyAccess=main', 'WatchdogSec=30s', 'ExecStart=/usr/local/bin/icosfl-coordinator serve', 'Restart=on-failure', 'DynamicUser=yes',
    'StateDirectory=icosfl-coordinator', 'RuntimeDirectory=icosfl-coordinator', 'ConfigurationDirectory=icosfl', 'CapabilityBoundingSet=', 'ProtectSystem=strict', 'NoNewPrivileges=yes']) {
    assert.ok(unit.split('\n').includes(line), `coordinator unit lacks ${line}`);
  }
  // The role sockets get their groups from a privileged step: the sandboxed service cannot chgrp.
  for (const line of ['RuntimeDirectoryMode=0711', 'ExecStartPost=+/usr/bin/chgrp icosfl-viewers /run/icosfl-coordinator/coordinator.sock', 'ExecStartPost=+/usr/bin/chgrp icosfl-operators /run/icosfl-coordinator/operator.sock']) {
    assert.ok(unit.split('\n').includes(line), `coordinator unit lacks ${line}`);
  }
  const sysusers = readFileSync(join(SYSTEMD, 'sysusers.d', 'icosfl.conf'), 'utf8');
  for (const g of ['icosfl-viewers', 'icosfl-operators']) assert.match(sysusers, new RegExp(`^g ${g} -$`, 'm'));
  assert.match(readFileSync(join(SYSTEMD, 'drop-ins', 'coordinator-signing-key.conf'), 'utf8'), /^LoadCredential=coordinator-signing\.key:\/etc\/icosfl\/coordinator-signing\.key$/m);
  // The serve command sends WATCHDOG=1 at half of $WATCHDOG_USEC: 30 s leaves 15 s between pings.
  assert.not.match(unit, /8192/, 'stale comment: the ciphertexts are N=4096');
});

test.run();
