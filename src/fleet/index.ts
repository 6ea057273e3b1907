export { Fleet } from './fleet';
export type { FleetOptions, FleetListener } from './fleet';
export { Upstream } from './upstream';
export type { UpstreamSnapshot } from './upstream';
export { DnsDiscovery, systemResolver } from './dns-discovery';
export type { Resolver, DnsDiscoveryOptions } from './dns-discovery';
