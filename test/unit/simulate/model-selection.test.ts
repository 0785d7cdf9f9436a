import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pooledRelativeLoss, RELATIVE_LOSS_CAP } from '../../../coordinator/strategy/model-selection.js';

test('the mean of the clients\' relative losses', () => {
  assert.ok(Math.abs(pooledRelativeLoss([0.5, 1, 0.9]) - 0.8) < 1e-15);
  assert.is(pooledRelativeLoss([1]), 1);
});

test('one client cannot decide for all: its ratio counts at most RELATIVE_LOSS_CAP', () => {
  // Nineteen clients 10 % better than persistence, one 300× worse (or flat: Infinity): the model
  // still scores below 1 (persistence everywhere = 1), so it is kept.
  const better = new Array<number>(19).fill(0.9);
  assert.ok(pooledRelativeLoss([...better, 300]) < 1);
  assert.ok(pooledRelativeLoss([...better, Infinity]) < 1);
  assert.is(pooledRelativeLoss([Infinity, 5]), RELATIVE_LOSS_CAP);
});

test('no reports, NaN or a negative ratio are refused by name', () => {
  assert.throws(() => pooledRelativeLoss([]), /at least one client report/);
  assert.throws(() => pooledRelativeLoss([0.5, NaN]), /client 1: relative loss must be ≥ 0, got NaN/);
  assert.throws(() => pooledRelativeLoss([-1]), /client 0: relative loss must be ≥ 0, got -1/);
});

test.run();
