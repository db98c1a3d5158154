import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Why a subscription URL is refused: each names the rule, so the admin knows what to allowlist or fix. */
export type UrlRefusal = {
  rule: 'scheme' | 'credentials' | 'unresolvable' | 'loopback' | 'private-range' | 'link-local' | 'labflow-itself';
  detail: string;
};

export interface UrlGuardSettings {
  /** WEBHOOK_ALLOWED_HOSTS: host or host:port entries an admin allows despite the rules (a receiver on the LAN). */
  allowedHosts: string[];
  /** PUBLIC_URL and the API's own listening address: labflow never sends its events to itself. */
  ownOrigins: string[];
}

const RANGES: { rule: 'loopback' | 'private-range' | 'link-local'; ranges: [string, number, 'ipv4' | 'ipv6'][] }[] = [
  {
    rule: 'loopback',
    ranges: [
      ['127.0.0.0', 8, 'ipv4'],
      ['::1', 128, 'ipv6'],
      ['0.0.0.0', 8, 'ipv4'],
      ['::', 128, 'ipv6'],
    ],
  },
  {
    rule: 'private-range',
    ranges: [
      ['10.0.0.0', 8, 'ipv4'],
      ['172.16.0.0', 12, 'ipv4'],
      ['192.168.0.0', 16, 'ipv4'],
      ['100.64.0.0', 10, 'ipv4'],
      ['fc00::', 7, 'ipv6'],
    ],
  },
  {
    rule: 'link-local',
    ranges: [
      ['169.254.0.0', 16, 'ipv4'],
      ['fe80::', 10, 'ipv6'],
    ],
  },
];

const BLOCKS = RANGES.map(({ rule, ranges }) => {
  const list = new BlockList();
  for (const [net, prefix, type] of ranges) list.addSubnet(net, prefix, type);
  return { rule, list };
});

function rangeOf(address: string): UrlRefusal['rule'] | null {
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const addr = mapped ? mapped[1] : address;
  const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
  return BLOCKS.find((b) => b.list.check(addr, type))?.rule ?? null;
}

const hostKey = (u: URL) => u.host.toLowerCase();
const portOf = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');

/**
 * Whether labflow may send webhooks to this URL: http(s) only, no credentials in it, not labflow itself, and every
 * address the name resolves to outside loopback, private and link-local ranges, unless the host is allowlisted.
 * Checked when a subscription is saved and again before each delivery (a name may come to resolve elsewhere).
 */
export async function refuseWebhookUrl(raw: string, settings: UrlGuardSettings): Promise<UrlRefusal | null> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { rule: 'scheme', detail: 'the URL does not parse' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { rule: 'scheme', detail: 'only http and https URLs are accepted' };
  if (url.username || url.password) return { rule: 'credentials', detail: 'the URL may not carry a user name or password' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  for (const own of settings.ownOrigins) {
    const o = URL.parse(own);
    if (o && o.hostname.replace(/^\[|\]$/g, '').toLowerCase() === host.toLowerCase() && portOf(o) === portOf(url)) {
      return { rule: 'labflow-itself', detail: `${url.host} is labflow's own address` };
    }
  }
  const allowed = settings.allowedHosts.map((h) => h.trim().toLowerCase()).filter(Boolean);
  if (allowed.includes(hostKey(url)) || allowed.includes(url.hostname.toLowerCase())) return null;
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    return { rule: 'unresolvable', detail: `${url.hostname} does not resolve` };
  }
  for (const address of addresses) {
    const rule = rangeOf(address);
    if (rule) {
      return { rule, detail: `${url.hostname} resolves to ${address}, in a ${rule} range; WEBHOOK_ALLOWED_HOSTS may allow it` };
    }
  }
  return null;
}
