import { Router as ExpressRouter } from 'express';
import type { Registry } from 'prom-client';

export interface ProbeDeps {
  /** Ready to take traffic: a Triton server is ready, not draining, Redis if it matters. */
  isReady: () => { ready: boolean; reasons: string[] };
  registry: Registry;
}

/**
 * Kubernetes probes and the metrics scrape. Liveness depends on nothing
 * downstream: it answers as long as the event loop turns.
 */
export function probeRoutes(deps: ProbeDeps): ExpressRouter {
  const router = ExpressRouter();
  router.get('/health/live', (_req, res) => {
    res.status(200).json({ live: true });
  });
  router.get('/health/ready', (_req, res) => {
    const { ready, reasons } = deps.isReady();
    res.status(ready ? 200 : 503).json(ready ? { ready } : { ready, reasons });
  });
  router.get('/metrics', (_req, res, next) => {
    deps.registry
      .metrics()
      .then((text) => {
        res.setHeader('content-type', deps.registry.contentType);
        res.end(text);
      })
      .catch(next);
  });
  return router;
}
