export { createBalancer } from './balancer';
export type { Balancer, BalancedServer, BalancerOptions } from './balancer';
export { RoutingRules, parseRoutingRules, matchGlob } from './rules';
export type { RoutingRule } from './rules';
export { Router } from './router';
export type { Pick, RouteQuery, RouterDeps } from './router';
export { SequenceAffinity } from './sequence-affinity';
export { rendezvousPick } from './rendezvous';
export type { RendezvousServer } from './rendezvous';
