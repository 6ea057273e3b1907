import { promises as dns } from 'node:dns';
import type { TritonServerConfig, TlsConfig } from '../config';
import type { Logger } from '../observability';

/** Returns the IP addresses a name resolves to now. */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => {
  const [v4, v6] = await Promise.allSettled([dns.resolve4(host), dns.resolve6(host)]);
  const ips = [
    ...(v4.status === 'fulfilled' ? v4.value : []),
    ...(v6.status === 'fulfilled' ? v6.value : []),
  ];
  if (ips.length === 0 && v4.status === 'rejected') throw v4.reason;
  return ips;
};

export interface DiscoveryTarget {
  add(config: TritonServerConfig): unknown;
  remove(name: string): Promise<void>;
}

export interface DnsDiscoveryOptions {
  /** `host:port` of a headless Service. */
  target: string;
  intervalMs: number;
  group: string;
  tls: TlsConfig | undefined;
  resolver?: Resolver;
  logger: Logger;
}

/**
 * Keeps the fleet equal to the A/AAAA records of a headless Service: new pod
 * IPs join, vanished ones are removed (and drain). A failed lookup changes
 * nothing, so a DNS hiccup never empties the fleet.
 */
export class DnsDiscovery {
  private readonly host: string;
  private readonly port: string;
  private readonly resolver: Resolver;
  private current = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly fleet: DiscoveryTarget,
    private readonly options: DnsDiscoveryOptions,
  ) {
    const i = options.target.lastIndexOf(':');
    this.host = options.target.slice(0, i);
    this.port = options.target.slice(i + 1);
    this.resolver = options.resolver ?? systemResolver;
  }

  static serverName(ip: string): string {
    return `dns-${ip.replace(/[:[\]]/g, '-')}`;
  }

  async refresh(): Promise<void> {
    let ips: string[];
    try {
      ips = await this.resolver(this.host);
    } catch (err) {
      if (!this.failing) {
        this.options.logger.warn('DNS discovery lookup failed; keeping the current servers', {
          target: this.options.target,
          error: (err as Error).message,
        });
      }
      this.failing = true;
      return;
    }
    this.failing = false;
    const next = new Set(ips);
    for (const ip of next) {
      if (this.current.has(ip)) continue;
      const address = ip.includes(':') ? `[${ip}]:${this.port}` : `${ip}:${this.port}`;
      this.fleet.add({
        name: DnsDiscovery.serverName(ip),
        address,
        group: this.options.group,
        labels: { discovered: this.host },
        weight: 1,
        tls: this.options.tls,
      });
    }
    const removals: Promise<void>[] = [];
    for (const ip of this.current) {
      if (!next.has(ip)) removals.push(this.fleet.remove(DnsDiscovery.serverName(ip)));
    }
    this.current = next;
    await Promise.all(removals);
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
