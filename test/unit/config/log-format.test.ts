import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadAgentConfig } from '../../../agent/config/load.js';
import { isIcosflError } from '../../../common/errors.js';
import { loadCoordinatorConfig } from '../../../coordinator/config/load.js';
import { FIXTURES } from '../../helpers/paths.js';

/** `[agent] log_format` and `[coordinator] log_format`: auto unless set; $LOG_FORMAT fills an empty key; bad values name the key and where they came from. */
const ABSENT = join(FIXTURES, 'config', 'absent.toml');
const coordinator = (env: NodeJS.ProcessEnv, sets: string[] = []) =>
  loadCoordinatorConfig({ env, defaultPath: ABSENT, sets: ['coordinator.codec=plaintext', 'federation.id=log-format', ...sets] }).coordinator.log_format;
const agent = (env: NodeJS.ProcessEnv, sets: string[] = []) => loadAgentConfig({ env, defaultPath: ABSENT, sets }).agent.log_format;

test('auto by default; $LOG_FORMAT when the key is empty; the key (or its ICOSFL_ variable) wins', () => {
  assert.equal([agent({}), coordinator({})], ['auto', 'auto']);
  assert.equal([agent({ LOG_FORMAT: 'json' }), coordinator({ LOG_FORMAT: 'pretty' })], ['json', 'pretty']);
  assert.equal([agent({ LOG_FORMAT: 'json' }, ['agent.log_format=pretty']), coordinator({ LOG_FORMAT: 'pretty' }, ['coordinator.log_format=json'])], ['pretty', 'json']);
  assert.is(agent({ ICOSFL_AGENT_LOG_FORMAT: 'json' }), 'json');
  assert.is(agent({ LOG_FORMAT: 'yaml' }), 'auto', 'a LOG_FORMAT that is no format leaves auto (the daemon logs a warning)');
});

test('a log_format that is no format is CONFIG_INVALID naming the key, its source and the formats', () => {
  for (const [load, key, source] of [
    [() => agent({}, ['agent.log_format=xml']), 'agent.log_format', 'flag --set agent.log_format'],
    [() => coordinator({ ICOSFL_COORD_COORDINATOR_LOG_FORMAT: 'xml' }), 'coordinator.log_format', 'environment variable ICOSFL_COORD_COORDINATOR_LOG_FORMAT'],
  ] as const) {
    try {
      load();
      assert.unreachable(`${key}=xml was accepted`);
    } catch (err) {
      assert.ok(isIcosflError(err, 'CONFIG_INVALID'), String(err));
      assert.match((err as Error).message, `${key} (${source}): must be one of 'auto', 'json', 'pretty', got 'xml'`);
    }
  }
});

test.run();
