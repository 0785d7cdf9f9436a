import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { fedAvg } from '../../../coordinator/strategy/fedavg.js';

test('weighted by sample counts', () => {
  const out = fedAvg([
    { weights: Float32Array.of(1, 10), samples: 1 },
    { weights: Float32Array.of(4, -2), samples: 3 },
  ]);
  assert.equal(Array.from(out), [3.25, 1]);
});

test('a single client gets its own weights back; order does not matter', () => {
  const a = { weights: Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i)), samples: 7 };
  const b = { weights: Float32Array.from({ length: 1000 }, (_, i) => Math.cos(i)), samples: 13 };
  assert.equal(Array.from(fedAvg([a])), Array.from(a.weights));
  assert.equal(Array.from(fedAvg([a, b])), Array.from(fedAvg([b, a])));
});

test('misuse is named', () => {
  assert.throws(() => fedAvg([]), /at least one update/);
  assert.throws(() => fedAvg([{ weights: Float32Array.of(1), samples: 0 }]), /samples must be a positive number/);
  try {
    fedAvg([{ weights: Float32Array.of(1, 2), samples: 1 }, { weights: Float32Array.of(1), samples: 1 }]);
    assert.unreachable('length mismatch must throw');
  } catch (err) {
    assert.ok(isIcosflError(err, 'MODEL_INCOMPATIBLE'));
    assert.match((err as Error).message, /update 1 has 1 weights/);
  }
});

test.run();
