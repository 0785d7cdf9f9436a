import { IcosflError, type ErrorCode } from './errors.js';

/**
 * One place that turns a Node system error (an errno such as EACCES, with the path it was about)
 * into a sentence a user can act on, so no raw "ENOENT: no such file or directory, open '…'"
 * reaches a terminal. Call sites say what they were doing (`cannot create`, `cannot read`) and
 * which flag or key named the path; the fallback in common/cli.ts uses the same words.
 */
export type SystemError = NodeJS.ErrnoException & { code: string };

export function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && /^E[A-Z0-9]+$/.test((err as NodeJS.ErrnoException).code!) && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** What each errno means, in words (the code itself is kept in brackets for searching). */
const ERRNO_WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EEXIST: 'it already exists',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EIO: 'input/output error',
  EBUSY: 'the resource is busy',
  ENOTEMPTY: 'the directory is not empty',
  EXDEV: 'it is on another file system',
  ECONNREFUSED: 'nothing is listening there',
  EADDRINUSE: 'the address is already in use',
  EADDRNOTAVAIL: 'the address is not available on this host',
  ENOTSOCK: 'it is not a socket',
};

/** "permission denied (EACCES)"; an errno not in the table keeps Node's wording without the path. */
export function errnoWords(err: { code?: string | undefined; message?: string }): string {
  const code = err.code ?? 'unknown error';
  const words = ERRNO_WORDS[code] ?? (err.message ?? code).replace(/^E[A-Z0-9]+:\s*/, '').replace(/,\s*\w+\s+'.*'$/, '');
  return `${words} (${code})`;
}

/** What to do about each errno when writing; reading has its own hints. */
const WRITE_HINTS: Record<string, string> = {
  EACCES: 'choose a writable path or fix its permissions',
  EPERM: 'choose a writable path or fix its permissions',
  EROFS: 'choose a path on a writable file system',
  ENOSPC: 'free some space or choose another device',
  EDQUOT: 'free some space or choose another device',
  EEXIST: 'remove it first or choose another path',
  EISDIR: 'name a file, not a directory',
  ENOTDIR: 'check that every parent of the path is a directory',
  ENOENT: 'create its parent directory first',
};

const READ_HINTS: Record<string, string> = {
  EACCES: 'run as a user that may read it or fix its permissions',
  EPERM: 'run as a user that may read it or fix its permissions',
  ENOENT: 'check the path',
  ENOTDIR: 'check the path',
  EISDIR: 'name a file, not a directory',
};

/**
 * An output file or directory that cannot be created or written: OUTPUT_UNWRITABLE (exit 73),
 * "--plot /x/y.svg: cannot create /x/y.svg: permission denied (EACCES); choose a writable path…".
 * `what` names the flag or key that gave the path ('' when the path speaks for itself).
 */
export function outputError(path: string, err: unknown, what = '', hint?: string): IcosflError {
  const e = err as NodeJS.ErrnoException;
  const target = e.path && path && e.path !== path ? `${e.path} (for ${path})` : path || e.path || 'a file';
  const advice = hint ?? WRITE_HINTS[e.code ?? ''] ?? 'choose another path';
  // A write() that fails (ENOSPC, EIO) happens after the file was created.
  const verb = e.syscall === 'write' ? 'cannot write' : 'cannot create';
  return new IcosflError('OUTPUT_UNWRITABLE', `${what ? `${what}: ` : ''}${verb} ${target}: ${errnoWords(e)}; ${advice}`, { cause: err, details: { path, errno: e.code } });
}

/** An input file that cannot be read, under the code of what it was (DATA_INVALID, CRYPTO_KEY_INVALID…). */
export function inputError(code: ErrorCode, path: string, err: unknown, what = '', hint?: string): IcosflError {
  const e = err as NodeJS.ErrnoException;
  const advice = hint ?? READ_HINTS[e.code ?? ''] ?? 'check the path';
  return new IcosflError(code, `${what ? `${what}: ` : ''}cannot read ${path}: ${errnoWords(e)}; ${advice}`, { cause: err, details: { path, errno: e.code } });
}

/** Syscalls that only ever create or change files: their failures are output problems. */
const WRITE_SYSCALLS = new Set(['mkdir', 'mkdtemp', 'write', 'rename', 'copyfile', 'link', 'symlink', 'unlink', 'rmdir', 'rm', 'chmod', 'chown', 'ftruncate', 'fsync', 'utime']);

/**
 * The last resort for a system error no call site mapped (common/cli.ts): creating calls become
 * OUTPUT_UNWRITABLE, a listen() that fails is TRANSPORT_UNAVAILABLE, anything else reading an input
 * is DATA_INVALID, each with the path and the errno in words.
 */
export function fromSystemError(err: SystemError): IcosflError {
  const extra = err as { dest?: string; address?: string };
  const path = err.path ?? extra.dest ?? extra.address ?? '';
  if (WRITE_SYSCALLS.has(err.syscall ?? '') || err.code === 'ENOSPC' || err.code === 'EROFS' || err.code === 'EDQUOT' || err.code === 'EEXIST') return outputError(path, err);
  if (err.syscall === 'listen' || err.syscall === 'bind' || err.syscall === 'connect') {
    return new IcosflError('TRANSPORT_UNAVAILABLE', `cannot ${err.syscall} on ${path || 'the address'}: ${errnoWords(err)}`, { cause: err });
  }
  return inputError('DATA_INVALID', path || 'a file', err);
}
