import type { ExitName } from './exit-codes.js';

/**
 * The one domain error class of icosfl. Every failure that a caller may want to handle
 * carries a stable string `code` (never reworded once shipped) and, where it wraps another
 * failure, its `cause`. Argument misuse at a public boundary throws TypeError/RangeError
 * instead (see STYLE.md); this class is for things that go wrong in the world.
 */
export const ERROR_CODES = {
  // ring (native/)
  RING_LAYOUT_MISMATCH: { exit: 'DATA', help: 'the ring file was made with another capacity, channel count or dtype' },
  RING_LOCKED: { exit: 'TEMP_FAIL', help: 'another process holds the ring file' },
  RING_IO: { exit: 'IO', help: 'reading, writing or mapping the ring file failed' },
  RING_NOT_ENOUGH_DATA: { exit: 'TEMP_FAIL', help: 'the ring holds too few samples for the request' },
  RING_NO_SPACE: { exit: 'IO', help: "the ring file's space cannot be reserved: its filesystem is full (or over quota) for that capacity" },
  // config
  CONFIG_INVALID: { exit: 'CONFIG', help: 'a configuration file, variable or flag is malformed or out of range' },
  CONFIG_NOT_FOUND: { exit: 'CONFIG', help: 'a configuration file named explicitly does not exist' },
  // state files
  STATE_CORRUPT: { exit: 'DATA', help: 'a state file (model, keys, round) failed validation' },
  STATE_WRITE_FAILED: { exit: 'IO', help: 'a state file (model, journal, snapshot, keys) could not be written (disk full, quota, I/O error); the previous file is intact' },
  // collectors
  COLLECTOR_FAILED: { exit: 'FAILURE', help: 'a metric source could not be read or parsed' },
  // trainer
  BACKEND_UNAVAILABLE: { exit: 'UNAVAILABLE', help: 'a requested TensorFlow.js backend could not be loaded' },
  MODEL_INCOMPATIBLE: { exit: 'DATA', help: 'a saved or received model does not match the configured layout' },
  TRAINING_FAILED: { exit: 'FAILURE', help: 'training produced non-finite losses or weights' },
  // crypto
  CRYPTO_PARAMS_MISMATCH: { exit: 'DATA', help: 'key material or a ciphertext belongs to another parameter set or federation' },
  CRYPTO_SECRET_KEY_FORBIDDEN: { exit: 'NO_PERMISSION', help: 'the coordinator was handed a secret key' },
  CRYPTO_KEY_INVALID: { exit: 'NO_PERMISSION', help: 'key material is missing, malformed or unreadable' },
  CRYPTO_VALUE_OUT_OF_RANGE: { exit: 'DATA', help: 'a value would overflow the encodable range' },
  CRYPTO_MALFORMED_UPDATE: { exit: 'DATA', help: 'an encrypted update is truncated, oversized or malformed' },
  CRYPTO_LAYOUT_MISMATCH: { exit: 'DATA', help: 'an encrypted update does not match the model layout' },
  CRYPTO_DUPLICATE_UPDATE: { exit: 'DATA', help: 'the same encrypted update was added to one aggregate twice' },
  CRYPTO_TOO_FEW_CLIENTS: { exit: 'DATA', help: 'fewer agents contributed to an encrypted sum than the round requires' },
  // daemon
  DAEMON_NOT_RUNNING: { exit: 'UNAVAILABLE', help: 'no running daemon answered on its control socket' },
  TRAINER_NOT_RUNNING: { exit: 'UNAVAILABLE', help: "the daemon's training job is not running (disabled, starting, or failed to start)" },
  DATA_INVALID: { exit: 'DATA', help: 'an input data file is malformed' },
  OUTPUT_UNWRITABLE: { exit: 'CANT_CREATE', help: 'an output file or directory cannot be created or written' },
  CONTROL_PERMISSION_DENIED: { exit: 'NO_PERMISSION', help: "this user may not open the service's control socket (root or the socket's group may)" },
  CONTROL_FORBIDDEN: { exit: 'NO_PERMISSION', help: "the control socket used lacks the request's role (pause and resume need the operator socket, icosfl-operators)" },
  CONTROL_PROTOCOL_MISMATCH: { exit: 'UNAVAILABLE', help: 'the process on the control socket answered in another protocol version or shape' },
  CONTROL_REFUSED: { exit: 'FAILURE', help: 'the service refused a control request for a reason of its own (unknown command, internal failure)' },
  // federation (common/protocol, common/transport, coordinator/round, agent/federation)
  TRANSPORT_UNAVAILABLE: { exit: 'UNAVAILABLE', help: 'the MQTT broker could not be reached or refused the connection' },
  PROTOCOL_MALFORMED: { exit: 'DATA', help: 'a federation message is malformed, oversized, of an unknown version or of another federation' },
  COORDINATOR_BUSY: { exit: 'TEMP_FAIL', help: "another coordinator process holds this state directory" },
  // command line (common/cli-flags.ts)
  USAGE_INVALID: { exit: 'USAGE', help: 'a command line names an unknown command, subcommand or flag, or a flag lacks its value' },
  // broker security (common/transport/tls-credentials.ts, common/transport/mqtt.ts)
  TLS_MATERIAL_INVALID: { exit: 'CONFIG', help: 'a configured CA, certificate, private key or password file is missing, unreadable, malformed or does not match' },
  TRANSPORT_NOT_AUTHORISED: { exit: 'NO_PERMISSION', help: "the broker refused this client's certificate, username or password" },
  TRANSPORT_TLS_UNTRUSTED: { exit: 'UNAVAILABLE', help: "the broker's TLS certificate did not verify against the configured CA or does not name the broker's host" },
  // simulate
  SIMULATION_FAILED: { exit: 'FAILURE', help: 'a simulated federation did not finish: one of its processes exited or --timeout-s passed' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

// Every code declares the process exit status it leaves with (common/exit-codes.ts).
ERROR_CODES satisfies Record<string, { exit: ExitName; help: string }>;

export function exitNameOf(code: ErrorCode): ExitName {
  return ERROR_CODES[code].exit;
}

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
