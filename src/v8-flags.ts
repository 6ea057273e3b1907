import { setFlagsFromString } from 'node:v8';

// Tensor bodies live outside the V8 heap; counting them in V8's heap limit
// lets the GC run young collections instead of a full GC every few large
// requests (measured with npm run bench: 482 -> 39 full GCs over ~1,700
// 4 MiB calls; proxy CPU per 4 MiB request 31-36 ms -> 20-23 ms). main.ts
// imports this module first, so the flag is set before anything else loads.
setFlagsFromString('--external-memory-accounted-in-global-limit');

// No young-generation cap here: --max-semi-space-size only takes effect on
// the command line (the heap is sized before this module runs), and measured
// with npm run bench it cut RSS after 256 concurrent small requests from
// ~300 to 193-216 MB but raised CPU per request at c=16 from 1.2-1.4x to
// 1.3-2.3x rest-proxy's. The idle heap trim (heap-trim.ts) gives the grown
// young generation back after each burst instead; a deployment short of
// memory can set NODE_OPTIONS=--max-semi-space-size=16.
