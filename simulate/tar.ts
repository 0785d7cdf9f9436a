import { gunzipSync } from 'node:zlib';
import { IcosflError } from '../common/errors.js';

/**
 * Regular files of a (gzipped) ustar archive, enough for the GCD trace tarball without a tar
 * binary or a dependency. 512-byte header blocks; name at 0 (100 B) with the ustar prefix at 345
 * (155 B), octal size at 124, octal header checksum at 148 (8 B), type flag at 156 ('0' or NUL =
 * file). A truncated or corrupt archive is DATA_INVALID saying where, never a zlib or RangeError.
 */
export function* tarEntries(archive: Uint8Array): Generator<{ name: string; data: Uint8Array }> {
  let buf: Uint8Array = archive;
  if (archive[0] === 0x1f && archive[1] === 0x8b) {
    try {
      buf = gunzipSync(archive);
    } catch (cause) {
      const truncated = (cause as { code?: string }).code === 'Z_BUF_ERROR';
      throw new IcosflError('DATA_INVALID', `the archive's gzip stream is ${truncated ? 'truncated (the file ends early)' : 'corrupt'}; download or copy it again`, { cause });
    }
  }
  const text = (o: number, len: number) => {
    const end = buf.indexOf(0, o);
    return Buffer.from(buf.subarray(o, end < 0 || end > o + len ? o + len : end)).toString('utf8');
  };
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= buf.length) {
    if (buf[offset] === 0) return; // end-of-archive blocks
    checkHeader(buf, offset, text);
    const size = parseInt(text(offset + 124, 12).trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw new IcosflError('DATA_INVALID', `not a valid tar archive: bad size field in the header at byte ${offset}`);
    const type = String.fromCharCode(buf[offset + 156]!);
    const prefix = text(offset + 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${text(offset, 100)}` : text(offset, 100));
    const dataStart = offset + 512;
    if (dataStart + size > buf.length) {
      throw new IcosflError('DATA_INVALID', `the tar archive is truncated: ${name} needs ${size} bytes at byte ${dataStart}, only ${buf.length - dataStart} are left; download or copy it again`);
    }
    const data = buf.subarray(dataStart, dataStart + size);
    longName = undefined;
    if (type === 'L') longName = Buffer.from(data).toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0' || type === '\0') yield { name, data };
    offset = dataStart + Math.ceil(size / 512) * 512;
  }
  if (offset < buf.length && buf.subarray(offset).some((b) => b !== 0)) {
    throw new IcosflError('DATA_INVALID', `the tar archive is truncated: a partial header at byte ${offset}; download or copy it again`);
  }
}

/**
 * The header checksum: the sum of its 512 bytes with the checksum field read as spaces. A blank
 * field (hand-made test archives) is not checked; the size field still has to parse.
 */
function checkHeader(buf: Uint8Array, offset: number, text: (o: number, len: number) => string): void {
  const field = text(offset + 148, 8).trim();
  if (field === '') return;
  const stored = /^[0-7]+$/.test(field) ? parseInt(field, 8) : NaN;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : buf[offset + i]!;
  if (stored !== sum) throw new IcosflError('DATA_INVALID', `not a valid tar archive: the header at byte ${offset} fails its checksum (corrupt, or not a tar file)`);
}
