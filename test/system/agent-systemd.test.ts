// The agent under a real systemd as PID 1: boots a throw-away Debian VM (QEMU; software
// emulation where KVM is unusable), installs the built package with scripts/install.sh and runs
// test/system/vm/agent-checks.sh inside it (start blocks until READY, own user, samples arrive,
// writes confined, watchdog kill + restart, crash restart with the ring intact, clean stop,
// uninstall). The image is built once and cached (scripts/vm/build-image.sh).
// Needs root and: qemu-system-x86 qemu-utils mmdebstrap e2fsprogs cpio zstd busybox-static.
//   ICOSFL_VM_CACHE    image cache (default ${XDG_CACHE_HOME:-~/.cache}/icosfl-vm)
//   ICOSFL_VM_ACCEL    kvm|tcg to force an accelerator; ICOSFL_VM_TIMEOUT_S (default 480)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';

/** The checks agent-checks.sh reports, in its order, with what each one proves. */
const CHECKS: [id: string, title: string][] = [
  ['install', 'install.sh creates the user, enables the unit, keeps an existing config'],
  ['start-ready', 'systemctl start blocks until READY=1 (ring already holds a sample)'],
  ['own-user', 'systemctl status shows it running under the icosfl user'],
  ['samples', 'samples keep arriving in the ring'],
  ['writes-confined', 'writes outside the state directory fail; /tmp private; state dir noexec'],
  ['watchdog', 'a stopped watchdog ping gets it killed (SIGABRT) and restarted'],
  ['crash-restart', 'SIGKILL restarts it with its ring intact'],
  ['stop-clean', 'systemctl stop is clean: exit 0 within 5 s'],
  ['coordinator-signed', "install.sh --coordinator: the coordinator runs signed ('message signing on') with its root-only 0600 key passed by LoadCredential="],
  ['coordinator-roles', 'the coordinator socket roles under systemd: a viewer gets status but not pause (CONTROL_FORBIDDEN, exit 77), an operator pauses and resumes, no group gets nothing'],
  ['coordinator-sandbox', 'install.sh --coordinator: the coordinator unit (DynamicUser, Type=notify, same hardening) runs serve, answers status, stops cleanly'],
  ['uninstall', 'install.sh --uninstall keeps state; --purge removes state, config and user'],
];

const VM = join(REPO_ROOT, 'scripts', 'vm');
const CACHE = process.env.ICOSFL_VM_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'icosfl-vm');
const TIMEOUT_S = Number(process.env.ICOSFL_VM_TIMEOUT_S ?? 480);
const { dir, cleanup } = tempDir('icosfl-vm-run-');
test.after(cleanup);

function step(what: string, cmd: string, args: string[], timeoutS: number): string {
  const started = Date.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 << 20 });
  console.log(`[system] ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (r.error || r.status !== 0) {
    throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}):\n${(r.stdout + r.stderr).slice(-4000)}`);
  }
  return r.stdout.trim();
}

interface Outcome { results: Map<string, { ok: boolean; detail: string }>; resultsLog: string; consoleLog: string; finished: boolean; setupError?: string }

/** Builds (or reuses) the image, packs the payload, boots the VM once; never throws. */
function runVm(): Outcome {
  const out: Outcome = { results: new Map(), resultsLog: '', consoleLog: '', finished: false };
  try {
    if (process.getuid?.() !== 0) throw new Error('the system test needs root (mmdebstrap builds the image, install.sh runs in it)');
    const image = step('image (cached after the first build)', 'bash', [join(VM, 'build-image.sh'), CACHE], 900).split('\n').pop()!;
    const payload = join(dir, 'payload.tar');
    step('payload', 'bash', [join(VM, 'build-payload.sh'), payload, join(REPO_ROOT, 'test', 'system', 'vm', 'agent-checks.sh')], 300);
    const logs = join(dir, 'logs');
    const started = Date.now();
    const r = spawnSync('bash', [join(VM, 'run-vm.sh'), image, payload, logs, String(TIMEOUT_S)], { encoding: 'utf8', timeout: (TIMEOUT_S + 30) * 1000 });
    console.log(`[system] VM run: ${((Date.now() - started) / 1000).toFixed(1)} s, exit ${r.status}${r.stderr ? ` (${r.stderr.trim()})` : ''}`);
    out.resultsLog = existsSync(join(logs, 'results.log')) ? readFileSync(join(logs, 'results.log'), 'utf8') : '';
    out.consoleLog = existsSync(join(logs, 'console.log')) ? readFileSync(join(logs, 'console.log'), 'utf8') : '';
    out.finished = /^HARNESS-EXIT \d+/m.test(out.resultsLog);
    for (const m of out.resultsLog.matchAll(/^(ok|not ok) (\S+) (.*)$/gm)) out.results.set(m[2]!, { ok: m[1] === 'ok', detail: m[3]! });
  } catch (err) {
    out.setupError = (err as Error).message;
  }
  return out;
}

const outcome = runVm();
const tail = (text: string, lines: number) => text.split('\n').slice(-lines).join('\n');
let diagnosticsShown = false;
/** On the first failure: everything needed to diagnose a CI run without rerunning it. */
function diagnostics(): string {
  if (diagnosticsShown) return '';
  diagnosticsShown = true;
  return `\n--- results (ttyS1) ---\n${outcome.resultsLog || '(empty)'}\n--- console (ttyS0), last 60 lines ---\n${tail(outcome.consoleLog, 60) || '(empty)'}\n`;
}
for (const [id, r] of outcome.results) console.log(`[system] ${r.ok ? 'ok    ' : 'NOT OK'} ${id}: ${r.detail}`);

test('the VM booted, ran every check and powered off', () => {
  assert.ok(!outcome.setupError, outcome.setupError);
  if (!outcome.finished) assert.unreachable(`the harness never reported HARNESS-EXIT (timeout ${TIMEOUT_S} s or a boot failure)${diagnostics()}`);
});

for (const [id, title] of CHECKS) {
  test(title, () => {
    assert.ok(!outcome.setupError, `setup failed: ${outcome.setupError}`);
    const r = outcome.results.get(id);
    if (!r) assert.unreachable(`check '${id}' did not report${diagnostics()}`);
    if (!r!.ok) assert.unreachable(`${id}: ${r!.detail}${diagnostics()}`);
  });
}

test.run();
