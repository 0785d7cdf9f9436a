/**
 * The one domain error class of icosfl. Every failure that a caller may want to handle
 * carries a stable string `code` (never reworded once shipped) and, where it wraps another
 * failure, its `cause`. Argument misuse at a public boundary throws TypeError/RangeError
 * instead (see STYLE.md); this class is for things that go wrong in the world.
 */
export const ERROR_CODES = {
  // ring (native/)
  RING_LAYOUT_MISMATCH: 'the ring file was made with another capacity, channel count or dtype',
  RING_CORRUPT: 'the ring file failed its header or checksum check',
  RING_LOCKED: 'another process holds the ring file',
  RING_IO: 'reading, writing or mapping the ring file failed',
  RING_NOT_ENOUGH_DATA: 'the ring holds too few samples for the request',
  // config
  CONFIG_INVALID: 'a configuration file, variable or flag is malformed or out of range',
  CONFIG_NOT_FOUND: 'a configuration file named explicitly does not exist',
  // state files
  STATE_CORRUPT: 'a state file (model, keys, round) failed validation',
  // collectors
  COLLECTOR_FAILED: 'a metric source could not be read or parsed',
  // trainer
  BACKEND_UNAVAILABLE: 'a requested TensorFlow.js backend could not be loaded',
  MODEL_INCOMPATIBLE: 'a saved or received model does not match the configured layout',
  TRAINING_FAILED: 'training produced non-finite losses or weights',
  // crypto
  CRYPTO_PARAMS_MISMATCH: 'key material or a ciphertext belongs to another parameter set or federation',
  CRYPTO_SECRET_KEY_FORBIDDEN: 'the coordinator was handed a secret key',
  CRYPTO_KEY_INVALID: 'key material is missing, malformed or unreadable',
  CRYPTO_VALUE_OUT_OF_RANGE: 'a value would overflow the encodable range',
  CRYPTO_MALFORMED_UPDATE: 'an encrypted update is truncated, oversized or malformed',
  CRYPTO_LAYOUT_MISMATCH: 'an encrypted update does not match the model layout',
  CRYPTO_DUPLICATE_UPDATE: 'the same encrypted update was added to one aggregate twice',
  CRYPTO_TOO_FEW_CLIENTS: 'fewer agents contributed to an encrypted sum than the round requires',
  // daemon
  DAEMON_NOT_RUNNING: 'no running daemon answered on its control socket',
  TRAINER_NOT_RUNNING: "the daemon's training job is not running (disabled, starting, or failed to start)",
  DATA_INVALID: 'an input data file is malformed',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class IcosflError extends Error {
  override readonly name = 'IcosflError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

export function isIcosflError(err: unknown, code?: ErrorCode): err is IcosflError {
  return err instanceof IcosflError && (code === undefined || err.code === code);
}
