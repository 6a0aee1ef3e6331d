// Hosts for multi-host tests on one machine: one Linux network namespace per daemon, each with its own
// address on a private /24, joined by a bridge in a switch namespace (veth pairs), every host's egress shaped
// by `tc netem` (delay, rate). Everything is created by the test and removed by destroy(); nothing touches the
// machine's own interfaces. Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RELAY = fileURLToPath(new URL('./delay-relay.mjs', import.meta.url));

export interface NetHost {
  name: string;
  /** The network namespace the host's processes run in. */
  ns: string;
  /** Its IPv4 address on the shared subnet. */
  ip: string;
  /** Command prefix that runs a program inside the namespace. */
  exec: string[];
}

export interface Network {
  hosts: Map<string, NetHost>;
  /**
   * Whether each host's egress delay is in the kernel (tc netem). Kernels built without sch_netem (this CI's
   * VM kernel) give only the rate limit (tc tbf); the caller then adds the delay in user space (delay-relay.mjs).
   */
  delayInKernel: boolean;
  destroy(): void;
}

export interface Shaping {
  /** One-way delay added on every host's egress (with netem). */
  delayMs: number;
  /** Egress rate limit per host. */
  rateMbit: number;
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Why namespaces cannot be used here, or undefined when they can (tries a throwaway namespace). */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux-only (this is ${process.platform})`;
  const probe = `ftprobe${process.pid}`;
  try {
    ip('netns', 'add', probe);
  } catch (e) {
    return `cannot create a network namespace (${String((e as { stderr?: string }).stderr ?? e).trim().split('\n')[0]}); run as root with iproute2 installed`;
  }
  try {
    execFileSync('ip', ['netns', 'exec', probe, 'tc', 'qdisc', 'show'], { stdio: 'ignore' });
  } catch {
    return 'tc (iproute2) is not usable inside a namespace';
  } finally {
    try { ip('netns', 'del', probe); } catch { /* gone */ }
  }
  return undefined;
}

/**
 * Creates `names.length` hosts on 10.X.0.0/24 (X from the pid, so parallel runs do not collide), host i at
 * 10.X.0.(i+1). Interface names stay under Linux's 15 characters.
 */
export function createNetwork(names: readonly string[], shaping: Shaping): Network {
  const tag = `ft${process.pid % 100000}`;
  const subnet = `10.${100 + (process.pid % 100)}.0`;
  const sw = `${tag}sw`;
  const hosts = new Map<string, NetHost>();
  const created: string[] = [];
  let delayInKernel = true;
  const destroy = (): void => {
    // Deleting a namespace removes its ends of the veth pairs, and with them the pairs.
    for (const ns of created.reverse()) {
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
    }
  };
  try {
    ip('netns', 'add', sw);
    created.push(sw);
    ip('-n', sw, 'link', 'set', 'lo', 'up');
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', sw, 'link', 'set', 'br0', 'up');
    names.forEach((name, i) => {
      const ns = `${tag}h${i}`;
      ip('netns', 'add', ns);
      created.push(ns);
      const hostEnd = `${tag}a${i}`;
      const swEnd = `${tag}b${i}`;
      ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', swEnd);
      ip('link', 'set', hostEnd, 'netns', ns);
      ip('link', 'set', swEnd, 'netns', sw);
      ip('-n', sw, 'link', 'set', swEnd, 'master', 'br0');
      ip('-n', sw, 'link', 'set', swEnd, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', hostEnd, 'name', 'eth0');
      ip('-n', ns, 'addr', 'add', `${subnet}.${i + 1}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      // netem shapes egress only: each direction of a path is delayed once, at its sender. The first host
      // finds out whether the kernel has netem; every later host is shaped the same way.
      const tc = (...qdisc: string[]) => execFileSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'root', ...qdisc], { stdio: 'ignore' });
      const tbf = () => tc('tbf', 'rate', `${shaping.rateMbit}mbit`, 'burst', '32kbit', 'latency', '400ms');
      if (!delayInKernel) tbf();
      else {
        try {
          tc('netem', 'delay', `${shaping.delayMs}ms`, 'rate', `${shaping.rateMbit}mbit`);
        } catch {
          delayInKernel = false;
          tbf();
        }
      }
      hosts.set(name, { name, ns, ip: `${subnet}.${i + 1}`, exec: ['ip', 'netns', 'exec', ns] });
    });
  } catch (e) {
    destroy();
    throw e;
  }
  return { hosts, delayInKernel, destroy };
}

/**
 * A TCP port forward on `via` (the consortium's gateway) to `to`:`port`, delaying each direction by `delayMs`
 * (delay-relay.mjs; 0 where netem already delays). Resolves once it listens; kill the process to stop it.
 */
export async function startForwarder(via: NetHost, to: NetHost, port: number, delayMs: number): Promise<ChildProcess> {
  const relay = spawn(via.exec[0]!, [...via.exec.slice(1), process.execPath, RELAY, via.ip, String(port), to.ip, String(port), String(delayMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    relay.stdout!.once('data', () => resolve());
    relay.once('exit', (code) => reject(new Error(`the forwarder on ${via.name} exited with ${code}`)));
  });
  return relay;
}
