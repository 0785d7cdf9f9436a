/**
 * Process exit codes, one registry with a help string each (sysexits.h numbering where one
 * fits, so systemd and shell users read them the usual way). A test checks every code has help.
 */
export const EXIT_CODES = {
  OK: { code: 0, help: 'success' },
  FAILURE: { code: 1, help: 'an unexpected error; the log names it' },
  USAGE: { code: 64, help: 'bad command line: unknown command, flag or argument' },
  DATA: { code: 65, help: 'input data (CSV, ciphertext, model file) is malformed' },
  UNAVAILABLE: { code: 69, help: 'a required service or backend is unavailable (daemon not running, broker unreachable)' },
  SOFTWARE: { code: 70, help: 'internal error: a bug in icosfl' },
  CANT_CREATE: { code: 73, help: 'cannot create an output file or directory' },
  IO: { code: 74, help: 'an I/O error on a state file or the ring' },
  TEMP_FAIL: { code: 75, help: 'temporary failure (state file locked by another process); retry later' },
  NO_PERMISSION: { code: 77, help: 'permission denied, or key material of the wrong role' },
  CONFIG: { code: 78, help: 'configuration error: the message names the key and the file' },
} as const;

export type ExitName = keyof typeof EXIT_CODES;

export function exitCode(name: ExitName): number {
  return EXIT_CODES[name].code;
}
