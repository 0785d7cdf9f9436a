import { spawn, type SpawnOptions } from 'node:child_process';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion, killed (SIGKILL) after timeoutMs; its exit code and output. */
export function runBounded(command: string, args: string[], timeoutMs: number, options: Omit<SpawnOptions, 'stdio'> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout!.on('data', (d) => (stdout += String(d)));
    p.stderr!.on('data', (d) => (stderr += String(d)));
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
