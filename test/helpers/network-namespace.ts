import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ip = (...args: string[]) => run('ip', args, { timeout: 30_000 });

/**
 * A Linux network namespace joined to the host by a veth pair (iproute2): a process started `under` it reaches the
 * host only through the link, which a test takes down (a network cut) and up again (healing). Names are unique per
 * call; remove() deletes the namespace and both ends of the pair.
 */
export interface NamespaceLink {
  namespace: string;
  /** The host's end of the link: what a process in the namespace connects to. */
  hostAddress: string;
  namespaceAddress: string;
  /**
   * Prefix of a command that runs in the namespace: nsenter (util-linux) execs the command in place, so a child's pid
   * is the command's own (`ip netns exec` forks).
   */
  under: string[];
  cut(): Promise<void>;
  heal(): Promise<void>;
  remove(): Promise<void>;
}

/** Why network namespaces cannot be used here, or null when they can (root, iproute2, nsenter, a kernel that allows them). */
export async function netnsUnavailable(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    await ip('-V');
  } catch {
    return 'iproute2 (`ip`) is not installed';
  }
  try {
    await run('nsenter', ['--version']);
  } catch {
    return 'nsenter (util-linux) is not installed';
  }
  const probe = `lf-probe-${randomBytes(4).toString('hex')}`;
  try {
    await ip('netns', 'add', probe);
  } catch (err) {
    return `\`ip netns add\` failed: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`;
  } finally {
    await ip('netns', 'del', probe).catch(() => undefined);
  }
  return null;
}

export async function createNamespaceLink(): Promise<NamespaceLink> {
  const id = randomBytes(4).toString('hex');
  const namespace = `labflow-${id}`;
  // Interface names are at most 15 characters.
  const hostEnd = `lfh${id}`;
  const namespaceEnd = `lfn${id}`;
  // A /30 of its own in 10.231.0.0/16, so parallel runs do not collide.
  const base = randomInt(0, 16384) * 4;
  const octets = (n: number) => `10.231.${Math.floor(n / 256)}.${n % 256}`;
  const hostAddress = octets(base + 1);
  const namespaceAddress = octets(base + 2);
  const inNamespace = (...args: string[]) => ip('netns', 'exec', namespace, 'ip', ...args);
  const remove = async () => {
    await ip('netns', 'del', namespace).catch(() => undefined);
    // Deleting the namespace deletes its end, and with it the pair; this is for a pair whose move never happened.
    await ip('link', 'del', hostEnd).catch(() => undefined);
  };
  try {
    await ip('netns', 'add', namespace);
    await ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', namespaceEnd);
    await ip('link', 'set', namespaceEnd, 'netns', namespace);
    await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostEnd);
    await ip('link', 'set', hostEnd, 'up');
    await inNamespace('addr', 'add', `${namespaceAddress}/30`, 'dev', namespaceEnd);
    await inNamespace('link', 'set', namespaceEnd, 'up');
    await inNamespace('link', 'set', 'lo', 'up');
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    namespace,
    hostAddress,
    namespaceAddress,
    under: ['nsenter', `--net=/run/netns/${namespace}`, '--'],
    cut: async () => void (await ip('link', 'set', hostEnd, 'down')),
    heal: async () => void (await ip('link', 'set', hostEnd, 'up')),
    remove,
  };
}
