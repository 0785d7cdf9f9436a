import { spawn } from 'node:child_process';

/**
 * Runs a shell command line on a pseudo-terminal (util-linux `script`), as a user at a terminal
 * would, at LOG_LEVEL=info unless env says otherwise: whatever the command writes to the
 * terminal comes back (line ends as \n); redirections in the line send a stream elsewhere.
 * `script -e` exits with the command's status.
 */
export function runInPty(commandLine: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number | null; terminal: string }> {
  return new Promise((resolve) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && !['LOG_FORMAT', 'NO_COLOR', 'JOURNAL_STREAM', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'].includes(k)));
    const p = spawn('script', ['-qec', commandLine, '/dev/null'], { env: { ...base, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d) => (out += String(d)));
    p.stderr.on('data', (d) => (out += String(d)));
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, terminal: out.replace(/\r\n/g, '\n') });
    });
  });
}

/** ANSI colour and erase-line sequences removed. */
export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*[mK]/g, '');
}

/** A word or path for a shell command line, single-quoted. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
