import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An OTLP attribute value as the JSON encoding carries it. */
type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
};

/** One span as received, with its attributes decoded to plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
  /** Attributes of the resource that sent it (service.name, ...). */
  resource: Record<string, string | number | boolean>;
}

interface JsonKeyValue {
  key: string;
  value: AnyValue;
}

function valueOf(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return '';
}

function attributesOf(list: JsonKeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) out[kv.key] = valueOf(kv.value);
  return out;
}

/** OTLP/JSON ids are hex (the spec's JSON mapping); some encoders send base64: both are read. */
function hexId(id: string | undefined): string {
  if (id === undefined || id === '') return '';
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

/**
 * A collector for tests: an OTLP/HTTP endpoint (POST /v1/traces, JSON
 * encoding, as @opentelemetry/exporter-trace-otlp-http sends it) on a free
 * loopback port, keeping every span it receives.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Requests refused because they were not OTLP/JSON (a test expects none). */
  readonly refused: string[] = [];
  /** When set, every export is answered with this status and its spans are not kept (a broken collector). */
  failWith: number | undefined;
  /** Exports answered with `failWith`. */
  failedExports = 0;
  /** Exports taken (each one POST of a batch of spans). */
  exports = 0;
  private server: Server | undefined;
  private port = 0;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const type = req.headers['content-type'] ?? '';
        if (req.method !== 'POST' || req.url !== '/v1/traces' || !type.includes('json')) {
          this.refused.push(`${req.method} ${req.url} ${type}`);
          res.writeHead(415).end();
          return;
        }
        if (this.failWith !== undefined) {
          this.failedExports++;
          res.writeHead(this.failWith).end();
          return;
        }
        try {
          this.exports++;
          this.take(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          this.refused.push(String(err));
          res.writeHead(400).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  /** The children of a span, in start order. */
  children(span: ReceivedSpan): ReceivedSpan[] {
    return this.spans
      .filter((s) => s.traceId === span.traceId && s.parentSpanId === span.spanId)
      .sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  private take(body: {
    resourceSpans?: Array<{
      resource?: { attributes?: JsonKeyValue[] };
      scopeSpans?: Array<{
        spans?: Array<{
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          kind: number;
          startTimeUnixNano: string | number;
          endTimeUnixNano: string | number;
          attributes?: JsonKeyValue[];
          status?: { code?: number; message?: string };
        }>;
      }>;
    }>;
  }): void {
    for (const rs of body.resourceSpans ?? []) {
      const resource = attributesOf(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: hexId(s.traceId),
            spanId: hexId(s.spanId),
            parentSpanId: hexId(s.parentSpanId),
            name: s.name,
            kind: s.kind,
            startNs: BigInt(s.startTimeUnixNano),
            endNs: BigInt(s.endTimeUnixNano),
            attributes: attributesOf(s.attributes),
            statusCode: s.status?.code ?? 0,
            statusMessage: s.status?.message ?? '',
            resource,
          });
        }
      }
    }
  }
}
