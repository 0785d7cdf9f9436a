// scripts/install.sh in staging mode (--destdir): it lays out the real built package, changes
// nothing on this system, and the staged package runs. The live mode (users, systemctl) is
// exercised under a real systemd by test/system/agent-systemd.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';

const INSTALL = join(REPO_ROOT, 'scripts', 'install.sh');
const { dir, cleanup } = tempDir('icosfl-install-');
test.after(cleanup);

function install(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('bash', [INSTALL, ...args], { encoding: 'utf8', env: { ...process.env, DESTDIR: '' } });
  return { code: r.status, out: r.stdout + r.stderr };
}

const stage = join(dir, 'stage');
const pkg = join(stage, 'usr/local/lib/icosfl');

test('--destdir stages the package, units, rules and a default config', () => {
  const r = install('--destdir', stage, '--no-gpu');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /staged under/);
  assert.ok(statSync(join(pkg, 'dist/agent/cli.js')).mode & 0o111, 'cli.js is not executable');
  assert.ok(existsSync(join(pkg, 'build/Release/icosfl_native.node')));
  assert.ok(existsSync(join(pkg, 'scripts/install.sh')), 'the installed tree cannot reinstall or uninstall itself');
  assert.is(readlinkSync(join(stage, 'usr/local/bin/icosfl-agent')), '/usr/local/lib/icosfl/dist/agent/cli.js');
  assert.is(readlinkSync(join(stage, 'usr/local/bin/icosfl-coordinator')), '/usr/local/lib/icosfl/dist/coordinator/cli.js');
  const unit = readFileSync(join(stage, 'usr/local/lib/systemd/system/icosfl-agent.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/icosfl-agent run$/m);
  for (const f of ['usr/local/lib/systemd/system/icosfl-coordinator.service', 'usr/local/lib/sysusers.d/icosfl.conf',
    'usr/local/lib/tmpfiles.d/icosfl-rapl.conf', 'usr/local/lib/udev/rules.d/60-icosfl-rapl.rules']) {
    assert.ok(existsSync(join(stage, f)), `${f} missing`);
  }
  assert.not.ok(existsSync(join(stage, 'usr/local/lib/systemd/system/icosfl-agent.service.d/50-gpu-nvidia.conf')), '--no-gpu installed the GPU drop-in');
  assert.is(statSync(join(stage, 'etc/icosfl/agent.toml')).mode & 0o777, 0o640);
});

test('only runtime modules travel: no dev, build-only or optional packages, no source maps, no tests', () => {
  const nm = join(pkg, 'node_modules');
  for (const m of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-wasm', 'node-seal', 'pino', 'prom-client', 'smol-toml', 'zod', 'systeminformation']) {
    assert.ok(existsSync(join(nm, m, 'package.json')), `${m} missing`);
  }
  for (const m of ['typescript', 'uvu', 'node-gyp', 'cmake-js', 'node-addon-api', 'webgpu', '@types/node']) {
    assert.not.ok(existsSync(join(nm, m)), `${m} was installed`);
  }
  assert.not.ok(existsSync(join(pkg, 'dist/test')), 'dist/test was installed');
  const maps = spawnSync('find', [pkg, '-name', '*.map'], { encoding: 'utf8' }).stdout.trim();
  assert.is(maps, '', 'source maps were installed');
});

test('the staged package runs from its own node_modules', () => {
  const r = spawnSync(process.execPath, [join(pkg, 'dist/agent/cli.js'), 'check-config', '--quiet', '--config', join(stage, 'etc/icosfl/agent.toml')], {
    encoding: 'utf8', cwd: dir, env: { ...process.env, NODE_PATH: '' },
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /config OK/);
});

test('a reinstall keeps an edited agent.toml', () => {
  const config = join(stage, 'etc/icosfl/agent.toml');
  writeFileSync(config, '# edited by the admin\n[sampler]\ninterval_ms = 2000\n');
  const r = install('--destdir', stage, '--no-gpu');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /kept the existing/);
  assert.is(readFileSync(config, 'utf8'), '# edited by the admin\n[sampler]\ninterval_ms = 2000\n');
});

test('--gpu adds the NVIDIA drop-in; another --prefix rewrites the unit paths and puts units under /etc', () => {
  const opt = join(dir, 'opt');
  const r = install('--destdir', opt, '--prefix', '/opt/icosfl', '--gpu');
  assert.is(r.code, 0, r.out);
  const unit = readFileSync(join(opt, 'etc/systemd/system/icosfl-agent.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/opt\/icosfl\/bin\/icosfl-agent run$/m);
  assert.match(unit, /^Documentation=file:\/\/\/opt\/icosfl\/lib\/icosfl\/systemd\/README.md$/m);
  assert.ok(existsSync(join(opt, 'etc/systemd/system/icosfl-agent.service.d/50-gpu-nvidia.conf')));
  assert.ok(lstatSync(join(opt, 'opt/icosfl/bin/icosfl-agent')).isSymbolicLink());
  // The WebGPU backend's Dawn binary (an optional dependency) travels only to GPU nodes.
  if (existsSync(join(REPO_ROOT, 'node_modules/webgpu/package.json'))) assert.ok(existsSync(join(opt, 'opt/icosfl/lib/icosfl/node_modules/webgpu/package.json')));
});

test('--uninstall removes package and units but keeps config and state; --purge removes those too', () => {
  const r = install('--destdir', stage, '--uninstall');
  assert.is(r.code, 0, r.out);
  assert.not.ok(existsSync(pkg));
  assert.not.ok(existsSync(join(stage, 'usr/local/bin/icosfl-agent')));
  assert.not.ok(existsSync(join(stage, 'usr/local/lib/systemd/system/icosfl-agent.service')));
  assert.not.ok(existsSync(join(stage, 'usr/local/lib/udev/rules.d/60-icosfl-rapl.rules')));
  assert.ok(existsSync(join(stage, 'etc/icosfl/agent.toml')));
  const p = install('--destdir', stage, '--uninstall', '--purge');
  assert.is(p.code, 0, p.out);
  assert.not.ok(existsSync(join(stage, 'etc/icosfl')));
});

test('bad options fail with a message naming them', () => {
  const cases: [string[], RegExp][] = [
    [['--prefix', 'relative/dir', '--destdir', join(dir, 'x')], /--prefix must be an absolute path, got 'relative\/dir'/],
    [['--frobnicate'], /unknown option '--frobnicate'/],
    [['--purge', '--destdir', join(dir, 'x')], /--purge only goes with --uninstall/],
    [['--prefix'], /--prefix needs a directory/],
  ];
  for (const [args, message] of cases) {
    const r = install(...args);
    assert.is(r.code, 1, `${args.join(' ')}: ${r.out}`);
    assert.match(r.out, message);
  }
  assert.not.ok(existsSync(join(dir, 'x')), 'a rejected invocation wrote files');
});

test.run();
