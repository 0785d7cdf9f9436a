import { gunzipSync } from 'node:zlib';

/**
 * Regular files of a (gzipped) ustar archive, enough for the GCD trace tarball without a tar
 * binary or a dependency. 512-byte header blocks; name at 0 (100 B) with the ustar prefix at 345
 * (155 B), octal size at 124, type flag at 156 ('0' or NUL = file).
 */
export function* tarEntries(archive: Uint8Array): Generator<{ name: string; data: Uint8Array }> {
  const buf = archive[0] === 0x1f && archive[1] === 0x8b ? gunzipSync(archive) : archive;
  const text = (o: number, len: number) => {
    const end = buf.indexOf(0, o);
    return Buffer.from(buf.subarray(o, end < 0 || end > o + len ? o + len : end)).toString('utf8');
  };
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= buf.length) {
    if (buf[offset] === 0) break; // end-of-archive blocks
    const size = parseInt(text(offset + 124, 12).trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw new RangeError(`tar: bad size field at byte ${offset}`);
    const type = String.fromCharCode(buf[offset + 156]!);
    const prefix = text(offset + 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${text(offset, 100)}` : text(offset, 100));
    const dataStart = offset + 512;
    const data = buf.subarray(dataStart, dataStart + size);
    longName = undefined;
    if (type === 'L') longName = Buffer.from(data).toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0' || type === '\0') yield { name, data };
    offset = dataStart + Math.ceil(size / 512) * 512;
  }
}
