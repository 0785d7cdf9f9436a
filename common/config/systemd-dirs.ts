/**
 * The first directory of a systemd-provided list ($STATE_DIRECTORY, $RUNTIME_DIRECTORY): systemd
 * passes several colon-separated when a unit names several. undefined when unset or empty.
 */
export function firstSystemdDir(list: string | undefined): string | undefined {
  const first = list?.split(':')[0];
  return first ? first : undefined;
}
