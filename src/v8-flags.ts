import { setFlagsFromString } from 'node:v8';

// Tensor bodies live outside the V8 heap; counting them in V8's heap limit
// lets the GC run young collections instead of a full GC every few large
// requests (measured with npm run bench: 482 -> 39 full GCs over ~1,700
// 4 MiB calls; proxy CPU per 4 MiB request 31-36 ms -> 20-23 ms). main.ts
// imports this module first, so the flag is set before anything else loads.
setFlagsFromString('--external-memory-accounted-in-global-limit');
