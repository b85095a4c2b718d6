import { isIP } from 'node:net';

/**
 * What kind of network an address belongs to. Only `public` may be fetched; `metadata` (cloud
 * instance metadata and similar control-plane endpoints) is refused even when private addresses
 * are allowed for tests.
 */
export type AddressClass =
  | 'public'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unique-local'
  | 'cgnat'
  | 'multicast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'metadata'
  | 'invalid';

interface Range {
  bytes: number[];
  prefix: number;
  cls: AddressClass;
}

function v4(cidr: string, cls: AddressClass): Range {
  const [address, prefix] = cidr.split('/');
  return { bytes: address.split('.').map(Number), prefix: Number(prefix ?? 32), cls };
}

function v6(cidr: string, cls: AddressClass): Range {
  const [address, prefix] = cidr.split('/');
  return { bytes: parseIpv6(address)!, prefix: Number(prefix ?? 128), cls };
}

/** Cloud metadata, link-local DNS/NTP and similar endpoints: never fetched. */
const METADATA_V4 = ['169.254.169.254', '169.254.169.253', '169.254.169.123', '169.254.170.2', '168.63.129.16', '100.100.100.200'].map(
  (a) => v4(a, 'metadata'),
);

const IPV4_RANGES: Range[] = [
  ...METADATA_V4,
  v4('0.0.0.0/8', 'unspecified'),
  v4('10.0.0.0/8', 'private'),
  v4('100.64.0.0/10', 'cgnat'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link-local'),
  v4('172.16.0.0/12', 'private'),
  v4('192.0.0.0/24', 'reserved'),
  v4('192.0.2.0/24', 'documentation'),
  v4('192.88.99.0/24', 'reserved'),
  v4('192.168.0.0/16', 'private'),
  v4('198.18.0.0/15', 'benchmarking'),
  v4('198.51.100.0/24', 'documentation'),
  v4('203.0.113.0/24', 'documentation'),
  v4('224.0.0.0/4', 'multicast'),
  v4('240.0.0.0/4', 'reserved'),
];

const IPV6_RANGES: Range[] = [
  v6('fd00:ec2::254', 'metadata'),
  v6('fd00:ec2::23', 'metadata'),
  v6('::/128', 'unspecified'),
  v6('::1/128', 'loopback'),
  v6('64:ff9b:1::/48', 'private'),
  v6('::/96', 'reserved'),
  v6('100::/64', 'reserved'),
  v6('2001::/32', 'reserved'),
  v6('2001:2::/48', 'benchmarking'),
  v6('2001:db8::/32', 'documentation'),
  v6('2001:10::/28', 'reserved'),
  v6('2001:20::/28', 'reserved'),
  v6('3fff::/20', 'documentation'),
  v6('fc00::/7', 'unique-local'),
  v6('fe80::/10', 'link-local'),
  v6('fec0::/10', 'private'),
  v6('ff00::/8', 'multicast'),
];

function inRange(bytes: number[], range: Range): boolean {
  let bits = range.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i] & mask) !== (range.bytes[i] & mask)) return false;
  }
  return true;
}

function parseIpv4(text: string): number[] | undefined {
  if (isIP(text) !== 4) return undefined;
  return text.split('.').map(Number);
}

/** 16 bytes of an IPv6 address (with `::` and a trailing dotted quad), or undefined. */
export function parseIpv6(text: string): number[] | undefined {
  if (isIP(text) !== 6) return undefined;
  let groups: string[];
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail = parseIpv4(text.slice(lastColon + 1)) ?? [];
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = text.split('::');
  if (rest === undefined) {
    groups = head.split(':');
  } else {
    const left = head ? head.split(':') : [];
    const right = rest ? rest.split(':') : [];
    groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  }
  const bytes = groups.flatMap((g) => {
    const value = parseInt(g, 16);
    return [value >> 8, value & 0xff];
  });
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes.length === 16 ? bytes : undefined;
}

function classifyV4(bytes: number[]): AddressClass {
  return IPV4_RANGES.find((range) => inRange(bytes, range))?.cls ?? 'public';
}

function classifyV6(bytes: number[]): AddressClass {
  const prefixIs = (values: number[]) => values.every((value, i) => bytes[i] === value);
  const zeros = (n: number) => Array(n).fill(0);
  // Forms that carry an IPv4 address: judged by the address they carry.
  if (prefixIs([...zeros(10), 0xff, 0xff])) return classifyV4(bytes.slice(12)); // ::ffff:a.b.c.d (mapped)
  if (prefixIs([...zeros(8), 0xff, 0xff, 0, 0])) return classifyV4(bytes.slice(12)); // ::ffff:0:a.b.c.d (SIIT)
  if (prefixIs([0, 0x64, 0xff, 0x9b, ...zeros(8)])) return classifyV4(bytes.slice(12)); // 64:ff9b::/96 (NAT64)
  if (prefixIs([0x20, 0x02])) {
    const embedded = classifyV4(bytes.slice(2, 6)); // 2002::/16 (6to4)
    if (embedded !== 'public') return embedded;
  }
  const listed = IPV6_RANGES.find((range) => inRange(bytes, range))?.cls;
  if (listed) return listed;
  // Outside 2000::/3 nothing is global unicast today.
  return (bytes[0] & 0xe0) === 0x20 ? 'public' : 'reserved';
}

/** Classifies an IPv4 or IPv6 address (brackets and a zone suffix allowed); `invalid` when it is neither. */
export function classifyAddress(address: string): AddressClass {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const ipv4 = parseIpv4(bare);
  if (ipv4) return classifyV4(ipv4);
  const ipv6 = parseIpv6(bare);
  if (ipv6) return classifyV6(ipv6);
  return 'invalid';
}
