import { aggregateGpus, NvidiaSmiReader } from './nvidia-smi-reader.js';
import type { CollectorSource } from './types.js';

const DEFAULT_INTERVAL_MS = 1000;

export const gpuSource: CollectorSource = {
  name: 'gpu',
  // Off by default: it starts a child process, and hosts without NVIDIA GPUs are the majority.
  defaultEnabled: false,
  metrics: {
    gpu_util_pct: { unit: 'percent', help: 'GPU utilisation, mean over NVIDIA GPUs (nvidia-smi utilization.gpu)' },
    gpu_mem_used_bytes: { unit: 'bytes', help: 'GPU memory used, summed over NVIDIA GPUs' },
    gpu_power_watts: { unit: 'watts', help: 'GPU board power draw, summed over NVIDIA GPUs' },
  },
  create(ctx) {
    const intervalMs = ctx.options.gpu?.intervalMs ?? DEFAULT_INTERVAL_MS;
    const command = ctx.options.gpu?.command ?? 'nvidia-smi';
    if (!Number.isInteger(intervalMs) || intervalMs < 10) throw new RangeError(`gpu.intervalMs must be an integer ≥ 10 (ms), got ${intervalMs}`);
    if (typeof command !== 'string' || command === '') throw new TypeError('gpu.command must be a non-empty string');
    const reader = new NvidiaSmiReader({ command, intervalMs, logger: ctx.logger, clock: ctx.clock });
    return {
      name: 'gpu',
      metrics: ['gpu_util_pct', 'gpu_mem_used_bytes', 'gpu_power_watts'],
      async collect() {
        const g = aggregateGpus(reader.latest());
        return { gpu_util_pct: g.utilPct, gpu_mem_used_bytes: g.memUsedBytes, gpu_power_watts: g.powerWatts };
      },
      close() {
        reader.close();
      },
    };
  },
};
