import { basename } from 'node:path';

/**
 * What each NAB series measures, from its file name (NAB's data/README and the folder names
 * say it; README.md "Simulation data format" has this table). The kind is the metric column
 * `convert --from nab` writes and what `--kind` selects. First match wins; a file no entry
 * matches is `unknown`, never guessed. Patterns match the file name without `.csv`.
 */
export const NAB_KINDS: readonly { pattern: RegExp; kind: string; measures: string }[] = [
  { pattern: /^(ec2|rds)_cpu_utilization_/, kind: 'cpu', measures: 'EC2 / RDS CPU utilisation, %' },
  { pattern: /^cpu_utilization_asg_/, kind: 'cpu', measures: 'mean CPU utilisation of an autoscaling group, %' },
  { pattern: /^ec2_network_in_|_NetworkIn$/, kind: 'network_in', measures: 'EC2 network bytes in' },
  { pattern: /^ec2_disk_write_bytes_/, kind: 'disk_write_bytes', measures: 'EC2 disk write bytes' },
  { pattern: /^elb_request_count_/, kind: 'requests', measures: 'ELB request count' },
  { pattern: /_request_latency_/, kind: 'latency', measures: 'EC2 request latency' },
  { pattern: /^(machine|ambient)_temperature_/, kind: 'temperature', measures: 'a machine or room temperature sensor' },
  { pattern: /^nyc_taxi$/, kind: 'taxi_passengers', measures: 'NYC taxi passengers per 30 min' },
  { pattern: /^exchange-\d+_cpc_/, kind: 'ad_cpc', measures: 'online advertising cost per click' },
  { pattern: /^exchange-\d+_cpm_/, kind: 'ad_cpm', measures: 'online advertising cost per thousand impressions' },
  { pattern: /^occupancy_/, kind: 'traffic_occupancy', measures: 'road sensor occupancy (Twin Cities traffic)' },
  { pattern: /^speed_/, kind: 'traffic_speed', measures: 'road sensor speed (Twin Cities traffic)' },
  { pattern: /^TravelTime_/, kind: 'traffic_travel_time', measures: 'road travel time (Twin Cities traffic)' },
  { pattern: /^Twitter_volume_/, kind: 'tweets', measures: 'Twitter mentions of a company' },
  { pattern: /^rogue_agent_key_/, kind: 'key_timing', measures: 'key press timings of computer users' },
];

/** NAB describes grok_asg_anomaly (an autoscaling group's metric) no further, nor the artificial series. */
export const UNKNOWN_KIND = 'unknown';

/** Every kind the table can give, in table order, then `unknown`. */
export const NAB_KIND_NAMES: readonly string[] = [...new Set([...NAB_KINDS.map((k) => k.kind), UNKNOWN_KIND])];

/** The kind of a NAB file, by its name. */
export function nabKindOf(path: string): string {
  const name = basename(path).replace(/\.csv$/i, '');
  return NAB_KINDS.find((k) => k.pattern.test(name))?.kind ?? UNKNOWN_KIND;
}
