import { readFileSync } from 'node:fs';
import { parse as parseToml, TomlError } from 'smol-toml';
import { IcosflError } from '../errors.js';
import { errnoWords } from '../system-errors.js';

/**
 * A config file as a layer of sections (`{ section: { key: value } }`), read with file:line:column
 * errors. An absent file is null when none was named (defaults apply) and CONFIG_NOT_FOUND when
 * one was (--config or an environment variable): a typo in a path must not silently mean defaults.
 */
export type ConfigLayer = Record<string, Record<string, unknown>>;

export function readTomlFile(path: string, explicit: boolean): ConfigLayer | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return null;
    if (code === 'ENOENT') throw new IcosflError('CONFIG_NOT_FOUND', `config file ${path} does not exist`, { cause: err, details: { file: path } });
    throw new IcosflError('CONFIG_INVALID', `config file ${path} cannot be read: ${errnoWords(err as NodeJS.ErrnoException)}; ${code === 'EISDIR' ? 'name the file, not its directory' : 'run as a user that may read it or fix its permissions'}`, { cause: err, details: { file: path } });
  }
  try {
    return parseToml(text) as ConfigLayer;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0];
      throw new IcosflError('CONFIG_INVALID', `${path}:${err.line}:${err.column}: invalid TOML: ${first}`, { cause: err, details: { file: path } });
    }
    throw err;
  }
}
