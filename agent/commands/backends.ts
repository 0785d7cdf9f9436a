import { defineCommand } from '../../common/cli.js';
import { CONFIG_FLAGS, JSON_FLAG, loadOptionsOf } from '../config/flags.js';
import { loadAgentConfig } from '../config/load.js';

const command = defineCommand({
  summary: 'list TensorFlow.js backends: loaded or why not, device, training samples/s on the configured model',
  flags: { ...CONFIG_FLAGS, ...JSON_FLAG },
  async run({ values }) {
    const config = loadAgentConfig(loadOptionsOf(values));
    const { selectBackend } = await import('../trainer/backends.js');
    const { specFromConfig } = await import('../trainer/model.js');
    const t = config.trainer;
    const spec = specFromConfig(t, config.sampler.metrics.length);
    // Every candidate is loaded and calibrated, whatever `backend` forces, so the user can compare.
    const { chosen, statuses } = await selectBackend({ ...t, backend: 'auto' }, spec, { calibrateAll: true });
    const used = t.backend === 'auto' ? chosen : t.backend;
    if (values.json) {
      process.stdout.write(JSON.stringify({ chosen: used, fastest: chosen, model: spec, batch_size: t.batch_size, backends: statuses }) + '\n');
      return 0;
    }
    const width = Math.max(...statuses.map((s) => s.name.length));
    const lines = statuses.map((s) => {
      const mark = s.name === used ? '*' : ' ';
      const what = s.loaded ? `${s.device ?? ''}, ${Math.round(s.samplesPerS ?? 0)} samples/s` : `not loaded: ${s.reason}`;
      return `${mark} ${s.name.padEnd(width)}  ${what}`;
    });
    const how = t.backend === 'auto' ? 'fastest calibrated (backend = "auto")' : `forced by config (backend = "${t.backend}")`;
    process.stdout.write(
      `model ${spec.kind}, lookback ${spec.lookback}, horizon ${spec.horizon}, ${spec.channels} channels, batch ${t.batch_size}\n${lines.join('\n')}\n* = used: ${how}\n`,
    );
    return 0;
  },
});
export default command;
