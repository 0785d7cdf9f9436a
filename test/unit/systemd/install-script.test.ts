// scripts/install.sh in staging mode (--destdir): it lays out the real built package, changes
// nothing on this system, and the staged package runs. The live mode (users, systemctl) is
// exercised under a real systemd by test/system/agent-systemd.test.ts.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
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
const EXAMPLES = [
  ['agent.example.toml', 'agent/config/agent.example.toml'],
  ['coordinator.example.toml', 'coordinator/config/coordinator.example.toml'],
] as const;
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
  // The examples (every key at its default) beside the config, and the licence and reference in the package.
  for (const [example, source] of EXAMPLES) {
    assert.is(readFileSync(join(stage, 'etc/icosfl', example), 'utf8'), readFileSync(join(REPO_ROOT, source), 'utf8'), example);
    assert.is(statSync(join(stage, 'etc/icosfl', example)).mode & 0o777, 0o644);
    assert.ok(existsSync(join(pkg, source)), `${source} is in the package (a reinstall from it needs it)`);
  }
  for (const f of ['LICENSE', 'NOTICE', 'docs/CONFIG.md']) assert.is(readFileSync(join(pkg, f), 'utf8'), readFileSync(join(REPO_ROOT, f), 'utf8'), f);
});

test('only runtime modules travel: no dev, build-only or optional packages, no source maps, no tests', () => {
  const nm = join(pkg, 'node_modules');
  for (const m of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-wasm', 'node-seal', 'pino', 'prom-client', 'smol-toml', 'zod', 'systeminformation', 'uplot']) {
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

test("the staged coordinator serves its status page, and uPlot, from the staged tree", async () => {
  assert.ok(existsSync(join(pkg, 'node_modules/uplot/package.json')), 'uplot (the status page charts) missing');
  const script = `import { statusPageFiles } from ${JSON.stringify(join(pkg, 'dist/coordinator/http/status-page.js'))}; process.stdout.write(JSON.stringify(statusPageFiles().map((f) => f.file)));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: dir, env: { ...process.env, NODE_PATH: '' } });
  assert.is(r.status, 0, r.stderr);
  const files = JSON.parse(r.stdout) as string[];
  assert.is(files.length, 5);
  for (const f of files) assert.ok(f.startsWith(`${pkg}/`) && existsSync(f), `${f} is not in the staged package`);
  // The real service from the staged tree, [http] on a free loopback port.
  const state = join(dir, 'served');
  const sets = ['coordinator.codec=plaintext', 'federation.id=install-test', `coordinator.state_dir=${state}/state`, `coordinator.runtime_dir=${state}/run`, 'broker.embedded_port=0', 'http.enabled=true', 'http.port=0'];
  const serve = spawn(process.execPath, [join(pkg, 'dist/coordinator/cli.js'), 'serve', ...sets.flatMap((v) => ['--set', v])], { cwd: dir, env: { ...process.env, NODE_PATH: '', LOG_FORMAT: 'json', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no "coordinator ready" within 20 s')), 20_000);
      createInterface({ input: serve.stdout! }).on('line', (line) => {
        const rec = JSON.parse(line) as { msg?: string; http?: string };
        if (rec.msg === 'coordinator ready') {
          clearTimeout(timer);
          resolve(rec.http!);
        }
      });
      serve.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
    });
    for (const path of ['/', '/page.js', '/uplot.iife.min.js', '/uplot.min.css', '/status.json']) {
      const res = await fetch(base + path);
      assert.is(res.status, 200, path);
      await res.arrayBuffer();
    }
  } finally {
    serve.kill('SIGTERM');
    await new Promise((resolve) => (serve.exitCode === null ? serve.once('exit', resolve) : resolve(null)));
  }
});

test('a reinstall keeps an edited agent.toml and refreshes the examples', () => {
  const config = join(stage, 'etc/icosfl/agent.toml');
  writeFileSync(config, '# edited by the admin\n[sampler]\ninterval_ms = 2000\n');
  writeFileSync(join(stage, 'etc/icosfl/agent.example.toml'), '# an older version\n');
  const r = install('--destdir', stage, '--no-gpu');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /kept the existing/);
  assert.is(readFileSync(config, 'utf8'), '# edited by the admin\n[sampler]\ninterval_ms = 2000\n');
  assert.is(readFileSync(join(stage, 'etc/icosfl/agent.example.toml'), 'utf8'), readFileSync(join(REPO_ROOT, 'agent/config/agent.example.toml'), 'utf8'));
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
  for (const [example] of EXAMPLES) assert.not.ok(existsSync(join(stage, 'etc/icosfl', example)), `${example} goes with the package`);
  const p = install('--destdir', stage, '--uninstall', '--purge');
  assert.is(p.code, 0, p.out);
  assert.not.ok(existsSync(join(stage, 'etc/icosfl')));
});

const cstage = join(dir, 'coordinator-stage');
const cetc = join(cstage, 'etc/icosfl');

test('--coordinator stages coordinator.toml from the example and a fresh key bundle; agent.json stays owner-only', () => {
  const r = install('--destdir', cstage, '--no-gpu', '--coordinator');
  assert.is(r.code, 0, r.out);
  assert.is(readFileSync(join(cetc, 'coordinator.toml'), 'utf8'), readFileSync(join(REPO_ROOT, 'coordinator/config/coordinator.example.toml'), 'utf8'));
  assert.is(statSync(join(cetc, 'coordinator.toml')).mode & 0o777, 0o644, 'the dynamic user must read the config');
  assert.is(statSync(join(cetc, 'coordinator.json')).mode & 0o777, 0o644, 'the dynamic user must read the parameters');
  assert.is(statSync(join(cetc, 'agent.json')).mode & 0o777, 0o600, 'the secret key is owner-only');
  assert.is(statSync(cetc).mode & 0o777, 0o755);
  assert.match(r.out, /agent\.json holds the federation's secret key \(root only, 0600\): copy it to every agent/);
  assert.match(r.out, /this staged tree now holds a secret key/);
  const unit = readFileSync(join(cstage, 'usr/local/lib/systemd/system/icosfl-coordinator.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/icosfl-coordinator serve$/m);
  // The signing key stays root's 0600; systemd passes it to the dynamic user as a credential.
  assert.is(statSync(join(cetc, 'coordinator-signing.key')).mode & 0o777, 0o600);
  const dropIn = readFileSync(join(cstage, 'usr/local/lib/systemd/system/icosfl-coordinator.service.d/50-signing-key.conf'), 'utf8');
  assert.match(dropIn, /^LoadCredential=coordinator-signing\.key:\/etc\/icosfl\/coordinator-signing\.key$/m);
  assert.match(r.out, /message signing on: \/etc\/icosfl\/coordinator-signing\.key is passed to the service as a credential/);
  assert.ok(existsSync(join(cstage, 'usr/local/lib/icosfl/coordinator/config/coordinator.example.toml')), 'an installed tree can set up a coordinator itself');
});

test('the staged coordinator checks its config and key bundle and reports its version', () => {
  const cli = join(cstage, 'usr/local/lib/icosfl/dist/coordinator/cli.js');
  const env = { ...process.env, NODE_PATH: '' };
  const check = spawnSync(process.execPath, [cli, 'check-config', '--quiet', '--config', join(cetc, 'coordinator.toml'), '--set', `coordinator.keys=${join(cetc, 'coordinator.json')}`], { encoding: 'utf8', cwd: dir, env });
  assert.is(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /config OK/);
  const secret = spawnSync(process.execPath, [cli, 'check-config', '--quiet', '--config', join(cetc, 'coordinator.toml'), '--set', `coordinator.keys=${join(cetc, 'agent.json')}`], { encoding: 'utf8', cwd: dir, env });
  assert.is(secret.status, 77, secret.stderr);
  const version = spawnSync(process.execPath, [cli, '--version'], { encoding: 'utf8', cwd: dir, env });
  assert.match(version.stdout, /^icosfl-coordinator \d+\.\d+\.\d+ \(protocol v1, node /);
});

test('a reinstall with --coordinator keeps the config and the federation keys', () => {
  writeFileSync(join(cetc, 'coordinator.toml'), '[federation]\nmin_agents = 3\n');
  const before = readFileSync(join(cetc, 'coordinator.json'), 'utf8');
  const r = install('--destdir', cstage, '--no-gpu', '--coordinator');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /kept the existing \/etc\/icosfl\/coordinator\.toml/);
  assert.match(r.out, /kept the existing key bundle/);
  assert.is(readFileSync(join(cetc, 'coordinator.toml'), 'utf8'), '[federation]\nmin_agents = 3\n');
  assert.is(readFileSync(join(cetc, 'coordinator.json'), 'utf8'), before);
});

test('--no-keys makes no key bundle; agent.json without coordinator.json is refused', () => {
  const bare = join(dir, 'no-keys');
  const r = install('--destdir', bare, '--no-gpu', '--coordinator', '--no-keys');
  assert.is(r.code, 0, r.out);
  assert.ok(existsSync(join(bare, 'etc/icosfl/coordinator.toml')));
  assert.not.ok(existsSync(join(bare, 'etc/icosfl/coordinator.json')));
  assert.not.ok(existsSync(join(bare, 'etc/icosfl/agent.json')));
  assert.match(r.out, /no key bundle at \/etc\/icosfl\/coordinator\.json \(--no-keys\)/);
  assert.not.ok(existsSync(join(bare, 'usr/local/lib/systemd/system/icosfl-coordinator.service.d/50-signing-key.conf')), 'no key, no credential (a missing one fails the start)');
  assert.match(r.out, /no \/etc\/icosfl\/coordinator-signing\.key: messages are not signed/);
  writeFileSync(join(bare, 'etc/icosfl/agent.json'), '{}');
  const refused = install('--destdir', bare, '--no-gpu', '--coordinator');
  assert.is(refused.code, 1, refused.out);
  assert.match(refused.out, /agent\.json exists without coordinator\.json: not making a new federation/);
  const plain = install('--destdir', join(dir, 'x'), '--no-keys');
  assert.is(plain.code, 1);
  assert.match(plain.out, /--no-keys only goes with --coordinator/);
});

test('--uninstall --coordinator removes only the coordinator; --purge also its config, keys and state', () => {
  const r = install('--destdir', cstage, '--uninstall', '--coordinator');
  assert.is(r.code, 0, r.out);
  assert.not.ok(existsSync(join(cstage, 'usr/local/lib/systemd/system/icosfl-coordinator.service')));
  assert.not.ok(existsSync(join(cstage, 'usr/local/lib/systemd/system/icosfl-coordinator.service.d')), 'the credential drop-in goes with the unit');
  assert.ok(existsSync(join(cstage, 'usr/local/lib/systemd/system/icosfl-agent.service')), 'the agent stays');
  assert.ok(existsSync(join(cstage, 'usr/local/lib/icosfl/dist/agent/cli.js')), 'the package stays');
  for (const f of ['coordinator.toml', 'coordinator.json', 'agent.json']) assert.ok(existsSync(join(cetc, f)), `${f} kept`);
  const p = install('--destdir', cstage, '--uninstall', '--coordinator', '--purge');
  assert.is(p.code, 0, p.out);
  for (const f of ['coordinator.toml', 'coordinator.json', 'agent.json', 'coordinator-signing.key', 'coordinator-signing.pub']) assert.not.ok(existsSync(join(cetc, f)), `${f} purged`);
  assert.ok(existsSync(join(cetc, 'agent.toml')), "the agent's config stays");
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
