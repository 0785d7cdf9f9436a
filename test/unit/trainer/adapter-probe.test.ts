import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultCandidates, loadBackends } from '../../../agent/trainer/backends.js';
import { captureLogger } from '../collectors/log-capture.js';

/**
 * The webgpu candidate asks for Dawn's adapter in a child process (agent/trainer/gpu/
 * adapter-probe.ts), with the real `webgpu` package: Dawn's errors come back as reasons, what it
 * printed on stderr comes back as debug records, and a refused adapter never loads Dawn here.
 */
const webgpuOnly = (flags: string[], logger = captureLogger().logger) => defaultCandidates({ webgpuFlags: flags, allowSoftwareAdapter: false, logger }).filter((c) => c.name === 'webgpu');

test('an error Dawn raises in the probe is the reason, word for word', async () => {
  const [status] = await loadBackends(webgpuOnly(['backend=nonsense']));
  assert.equal(status, { name: 'webgpu', loaded: false, reason: "unrecognised backend 'nonsense'" });
});

test('a software adapter is refused after the probe alone: Dawn is not loaded into this process; what it printed is logged at debug', async () => {
  const { logger, lines } = captureLogger();
  const [status] = await loadBackends(webgpuOnly([], logger));
  assert.is(status!.loaded, false);
  // This machine has Mesa's software adapter (or none at all); either way nothing is loaded here.
  assert.match(status!.reason!, /^(only a software WebGPU adapter \(.+\); it is a CPU, so it is not used unless ICOSFL_WEBGPU_SOFTWARE=1|Dawn found no WebGPU adapter)/);
  assert.is((globalThis as { GPUAdapter?: unknown }).GPUAdapter, undefined, "Dawn's globals were never installed in this process");
  if (/only a software/.test(status!.reason!)) {
    const dawn = lines.filter((l) => l.msg === 'Dawn wrote on stderr while probing its adapter');
    assert.ok(dawn.length >= 1 && dawn.every((l) => l.level === 20 && typeof l.line === 'string'), JSON.stringify(lines));
    assert.ok(dawn.some((l) => /artificially reduced/.test(String(l.line))), JSON.stringify(dawn));
  }
});

test.run();
