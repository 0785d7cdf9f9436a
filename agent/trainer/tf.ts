/**
 * The one place the trainer imports TensorFlow.js from: core + layers + the CPU backend (always
 * present). Other backends are loaded on demand by backends.ts. The umbrella `@tensorflow/tfjs`
 * is not used: 141 MB of converter and WebGL code an edge node never runs.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';


// PROD skips tfjs's debug-mode checks and its console banner suggesting tfjs-node (our backend
// choice is backends.ts's job, reported by `icosfl-agent backends`).
tf.env().set('PROD', true);

/**
 * tfjs-layers calls chained tensor methods (the LSTM's orthogonal initialiser calls
 * `t.flatten()`); the umbrella package registers them, core's Node bundle does not, and core's
 * ESM chained-op files cannot be imported from Node (extensionless imports). So the few that
 * layers needs are registered here, each a one-line call of the op of the same name.
 */
const CHAINED = ['stridedSlice', 'reshape', 'add', 'sub', 'mul', 'div', 'matMul', 'transpose', 'sum', 'mean', 'max', 'min', 'abs',
  'square', 'sqrt', 'exp', 'log', 'neg', 'relu', 'sigmoid', 'tanh', 'slice', 'squeeze', 'expandDims', 'tile', 'gather',
  'clipByValue', 'cast', 'greater', 'less', 'equal', 'maximum', 'minimum', 'pow', 'sign', 'round', 'floor', 'concat',
  'stack', 'unstack', 'split', 'dot', 'norm', 'logicalAnd', 'where', 'reciprocal', 'softmax', 'argMax'] as const;
const proto = (tf.Tensor as unknown as { prototype: Record<string, unknown> }).prototype;
for (const name of CHAINED) {
  const op = (tf as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
  if (typeof op === 'function' && typeof proto[name] !== 'function') {
    proto[name] = function (this: tf.Tensor, ...args: unknown[]) {
      return op(this, ...args);
    };
  }
}
proto.asScalar ??= function (this: tf.Tensor) {
  return tf.reshape(this, []);
};
proto.flatten ??= function (this: tf.Tensor) {
  return tf.reshape(this, [this.size]);
};
proto.as1D ??= function (this: tf.Tensor) {
  return tf.reshape(this, [this.size]);
};
proto.asType ??= function (this: tf.Tensor, dtype: tf.DataType) {
  return tf.cast(this, dtype);
};

export { tf, tfl };
