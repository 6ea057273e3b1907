import convict from 'convict';

const MiB = 1024 * 1024;

/** The samplers of OTEL_TRACES_SAMPLER the proxy supports (the SDK's built-in ones). */
export const TRACE_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

export type TraceSamplerName = (typeof TRACE_SAMPLERS)[number];

/**
 * Every setting the proxy has. Env vars win over the optional config file
 * (CONFIG_FILE), which wins over these defaults. README's configuration table
 * is generated from the same docs (`npm run config:docs`), so keep them exact.
 */
export function buildSchema(options?: { env?: NodeJS.ProcessEnv; args?: string[] }) {
  return convict(
    {
      http: {
        host: {
          doc: 'Address the HTTP server binds to.',
          format: String,
          default: '0.0.0.0',
          env: 'HOST',
        },
        port: {
          doc: 'HTTP port (Triton HTTP default 8000).',
          format: 'port',
          default: 8000,
          env: 'PORT',
        },
        keepAliveTimeoutMs: {
          doc: 'HTTP keep-alive idle timeout; keep above load balancer idle timeouts (60s on most).',
          format: 'nat',
          default: 65000,
          env: 'HTTP_KEEPALIVE_TIMEOUT_MS',
        },
        headersTimeoutMs: {
          doc: 'A request whose headers have not all arrived after this long gets 408 and its connection is closed (slow clients); 0 = HTTP_KEEPALIVE_TIMEOUT_MS + 5 s, which must stay above the keep-alive timeout.',
          format: 'nat',
          default: 0,
          env: 'HTTP_HEADERS_TIMEOUT_MS',
        },
        bodyTimeoutMs: {
          doc: 'A request body not fully received this long after its headers gets 408 and its connection is closed (0 = no bound).',
          format: 'nat',
          default: 30000,
          env: 'HTTP_BODY_TIMEOUT_MS',
        },
        maxBodyBytes: {
          doc: 'Largest request body (REST) or ModelInfer message (gRPC) accepted, checked before it is read (413 / RESOURCE_EXHAUSTED above it).',
          format: 'nat',
          default: 128 * MiB,
          env: 'MAX_BODY_BYTES',
        },
        // JSON.parse runs at roughly 10-100 ms per MiB (more with large integers
        // or NaN tokens), and formatting numbers at ~40 ns each, so 256 KiB keeps
        // inline work well inside the 20 ms budget.
        jsonWorkerThresholdBytes: {
          doc: "JSON text larger than this is handled in worker threads (one per core, at most 4) instead of on the event loop: a request's (a whole JSON body, or the inference header of a binary one) is parsed there, an answer's `data` arrays (size estimated from the element count) are encoded there. Smaller ones are handled inline.",
          format: 'nat',
          default: 256 * 1024,
          env: 'JSON_WORKER_THRESHOLD_BYTES',
        },
        jsonWorkerNiceIncrement: {
          doc: "Added to the JSON worker threads' nice value (Linux; per thread), so that when CPU is short the event loop, which serves every request, runs before the parsing and encoding of large bodies; 0 keeps them at the event loop's priority.",
          format: 'nat',
          default: 10,
          env: 'JSON_WORKER_NICE_INCREMENT',
        },
        grpcPort: {
          doc: "Port of the gRPC front end (inference.GRPCInferenceService, Triton's gRPC default 8001) on the same HOST; 0 disables it.",
          format: 'port',
          default: 8001,
          env: 'GRPC_PORT',
        },
        tlsCertFile: {
          doc: 'PEM certificate (chain) of the HTTP listener and the gRPC front end; with TLS_KEY_FILE they speak TLS only. Reloaded when it changes (AUTH_KEYS_RELOAD_INTERVAL_MS).',
          format: String,
          default: '',
          env: 'TLS_CERT_FILE',
        },
        tlsKeyFile: {
          doc: 'PEM private key of TLS_CERT_FILE.',
          format: String,
          default: '',
          env: 'TLS_KEY_FILE',
        },
        tlsClientCaFile: {
          doc: 'PEM CA bundle for mutual TLS on both listeners: clients must present a certificate it signed (empty = no client certificate).',
          format: String,
          default: '',
          env: 'TLS_CLIENT_CA_FILE',
        },
        apiKeys: {
          doc: 'Comma-separated API keys; when set, /v2 requests need `Authorization: Bearer <key>` or `X-API-Key`.',
          format: String,
          default: '',
          env: 'API_KEYS',
          sensitive: true,
        },
      },
      auth: {
        keysFile: {
          doc: 'YAML/JSON file with a top-level `clients` list (name, key or keySha256, scopes, models, quota, priority); several files comma-separated are merged (e.g. inference and admin keys from two Secrets). Reloaded when one changes. When set, every /v2 request needs a key.',
          format: String,
          default: '',
          env: 'AUTH_KEYS_FILE',
        },
        keysReloadIntervalMs: {
          doc: 'How often the keys file (and the JWKS file) is checked for changes.',
          format: 'nat',
          default: 2000,
          env: 'AUTH_KEYS_RELOAD_INTERVAL_MS',
        },
        allowUnauthenticatedAdmin: {
          doc: 'With no key configured, open repository load/unload and settings routes to anyone (closed by default; inference and read routes are open).',
          format: Boolean,
          default: false,
          env: 'ALLOW_UNAUTHENTICATED_ADMIN',
        },
        modelFileOverrides: {
          doc: 'Allow `file:` load parameters (model files written onto Triton servers); the caller also needs the admin scope.',
          format: Boolean,
          default: false,
          env: 'MODEL_FILE_OVERRIDES',
        },
        jwtJwksUrl: {
          doc: 'JWKS URL to verify bearer JWTs with (empty = no JWTs).',
          format: String,
          default: '',
          env: 'JWT_JWKS_URL',
        },
        jwtJwksFile: {
          doc: 'JWKS file to verify bearer JWTs with (empty = no JWTs).',
          format: String,
          default: '',
          env: 'JWT_JWKS_FILE',
        },
        jwtIssuer: {
          doc: 'Required `iss` of bearer JWTs (empty = any).',
          format: String,
          default: '',
          env: 'JWT_ISSUER',
        },
        jwtAudience: {
          doc: 'Required `aud` of bearer JWTs (empty = any).',
          format: String,
          default: '',
          env: 'JWT_AUDIENCE',
        },
        jwtScopesClaim: {
          doc: 'JWT claim with the scopes (space-separated string or list of infer, read, admin).',
          format: String,
          default: 'scope',
          env: 'JWT_SCOPES_CLAIM',
        },
        jwtModelsClaim: {
          doc: 'JWT claim with the model globs a token may use (empty = tokens may use every model).',
          format: String,
          default: '',
          env: 'JWT_MODELS_CLAIM',
        },
      },
      triton: {
        servers: {
          doc: 'Triton gRPC servers: `name=host:port[@group][*weight],...` in env, or an array of {name,address,group,labels,weight,tls} in the file.',
          format: '*',
          default: '' as unknown,
          env: 'TRITON_SERVERS',
        },
        discoveryDns: {
          doc: 'Headless Service `host:port` whose A records are Triton servers (re-resolved; empty = off).',
          format: String,
          default: '',
          env: 'TRITON_DISCOVERY_DNS',
        },
        discoveryIntervalMs: {
          doc: 'How often DNS discovery re-resolves.',
          format: 'nat',
          default: 10000,
          env: 'TRITON_DISCOVERY_INTERVAL_MS',
        },
        discoveryGroup: {
          doc: 'Group given to servers found by DNS discovery.',
          format: String,
          default: 'default',
          env: 'TRITON_DISCOVERY_GROUP',
        },
        routes: {
          doc: 'Routing rules `pattern=group,...` (glob * and ?; first match wins; unmatched models may use any group).',
          format: String,
          default: '',
          env: 'TRITON_ROUTES',
        },
        requestTimeoutMs: {
          doc: 'Default deadline of an inference request across all attempts (a request `timeout` parameter in microseconds, or the `X-Request-Timeout-Ms` header, may lower it).',
          format: 'nat',
          default: 30000,
          env: 'TRITON_REQUEST_TIMEOUT_MS',
        },
        streamIdleTimeoutMs: {
          doc: 'Streams (generate_stream, generate on decoupled models): longest wait for the next response once the first event is sent; the stream ends with an error event after it. The request deadline covers the time to the first event. 0 = no limit.',
          format: 'nat',
          default: 60000,
          env: 'STREAM_IDLE_TIMEOUT_MS',
        },
        generateMetadataTtlMs: {
          doc: "How long a model's input metadata and decoupled flag, read for the generate endpoints, are reused before being asked again.",
          format: 'nat',
          default: 10000,
          env: 'GENERATE_METADATA_TTL_MS',
        },
        attemptTimeoutMs: {
          doc: 'Longest a single inference attempt may wait for its server before it is cancelled and retried on another one (within the request deadline); 0 = off (an attempt may use the whole deadline). Not applied to stateful sequences, which are never retried.',
          format: 'nat',
          default: 0,
          env: 'TRITON_ATTEMPT_TIMEOUT_MS',
        },
        inferPingAfterMs: {
          doc: 'An inference connection with calls open that has received nothing for this long is checked with one HTTP/2 PING (at most one per silent spell, so Triton never counts ping strikes); 0 = off.',
          format: 'nat',
          default: 2000,
          env: 'TRITON_INFER_PING_AFTER_MS',
        },
        inferPingTimeoutMs: {
          doc: 'How long that PING may go unanswered before the connection counts as dead: it is closed and its calls are retried on other servers.',
          format: 'nat',
          default: 2000,
          env: 'TRITON_INFER_PING_TIMEOUT_MS',
        },
        sequenceIdleTimeoutMs: {
          doc: "How long a stateful sequence (sequence_id) stays pinned to its server without a request; each request refreshes it, sequence_end ends it. Keep it at least as long as the model's max_sequence_idle_microseconds.",
          format: 'nat',
          default: 600000,
          env: 'SEQUENCE_IDLE_TIMEOUT_MS',
        },
        controlTimeoutMs: {
          doc: 'Deadline of metadata, health and repository calls (load/unload use loadTimeoutMs).',
          format: 'nat',
          default: 5000,
          env: 'TRITON_CONTROL_TIMEOUT_MS',
        },
        connectTimeoutMs: {
          doc: 'How long a connection attempt of the http2 ModelInfer transport may take (grpc-js calls are bounded by their deadlines instead).',
          format: 'nat',
          default: 5000,
          env: 'TRITON_CONNECT_TIMEOUT_MS',
        },
        healthIntervalMs: {
          doc: 'How often each server is polled with ServerReady.',
          format: 'nat',
          default: 5000,
          env: 'TRITON_HEALTH_INTERVAL_MS',
        },
        // 160 MiB holds the 128 MiB body limit (MAX_BODY_BYTES) as one tensor plus
        // its metadata; the bench's 64 MiB case runs at this default. The limit
        // allocates nothing: a reply's buffer is sized by its own header.
        maxMessageBytes: {
          doc: 'gRPC send and receive message limit per server (must hold the largest tensor message).',
          format: 'nat',
          default: 160 * MiB,
          env: 'GRPC_MAX_MESSAGE_BYTES',
        },
        keepaliveTimeMs: {
          doc: "gRPC keepalive ping interval; Triton's default server policy rejects pings more often than every 5 minutes without data.",
          format: 'nat',
          default: 300000,
          env: 'GRPC_KEEPALIVE_TIME_MS',
        },
        keepaliveTimeoutMs: {
          doc: 'How long to wait for a keepalive ping answer before the connection is considered dead.',
          format: 'nat',
          default: 20000,
          env: 'GRPC_KEEPALIVE_TIMEOUT_MS',
        },
        // Measured (npm run bench, 4 MiB and 64 MiB binary through the proxy, C-core
        // backend, 3 runs each, MB/s each way): 64 KiB 72-83 / 60-94; 1 MiB
        // 110-158 / 114-161; 16 MiB 123-236 / 94-154. The window reserves no memory
        // (the proxy reads replies as they come), so the larger one costs nothing.
        flowControlWindowBytes: {
          doc: 'HTTP/2 flow-control window per connection and stream (grpc-js default is 64 KiB, far too small for large tensors).',
          format: 'nat',
          default: 16 * MiB,
          env: 'GRPC_FLOW_CONTROL_WINDOW_BYTES',
        },
        // Measured with the lean ModelInfer path: 1 vs 2 connections gave 555 vs
        // 604 us of proxy CPU per small request, 170 vs 189 MB/s at 4 MiB and 141
        // vs 141 MB/s at 64 MiB: one connection is not the bottleneck.
        channelsPerServer: {
          doc: 'HTTP/2 connections (channels) opened to each server.',
          format: 'nat',
          default: 1,
          env: 'GRPC_CHANNELS_PER_SERVER',
        },
        // Measured (npm run bench, proxy CPU per request, C-core backend, 3 interleaved
        // runs, both with V8's --external-memory-accounted-in-global-limit):
        // grpc-js -> http2 small JSON 701-745 -> 387-550 us, 4 KiB binary 550-717
        // -> 344-373 us, 4 MiB binary 19.5-22.9 -> 15.0-17.0 ms. A bare client
        // call: 180-400 -> 60-170 us small, 10-12 -> 5.5-7 ms at 4 MiB each way.
        inferTransport: {
          doc: 'How ModelInfer reaches Triton: `http2` (a lean unary call on node:http2 with pre-encoded frames) or `grpc-js`; other RPCs always use grpc-js.',
          format: ['http2', 'grpc-js'],
          default: 'http2' as 'http2' | 'grpc-js',
          env: 'GRPC_INFER_TRANSPORT',
        },
        tls: {
          enabled: {
            doc: 'Use TLS to servers from TRITON_SERVERS.',
            format: Boolean,
            default: false,
            env: 'TRITON_TLS_ENABLED',
          },
          caFile: {
            doc: 'CA bundle for server certificates.',
            format: String,
            default: '',
            env: 'TRITON_TLS_CA_FILE',
          },
          certFile: {
            doc: 'Client certificate (mTLS).',
            format: String,
            default: '',
            env: 'TRITON_TLS_CERT_FILE',
          },
          keyFile: {
            doc: 'Client key (mTLS).',
            format: String,
            default: '',
            env: 'TRITON_TLS_KEY_FILE',
            sensitive: true,
          },
          serverName: {
            doc: 'Name checked against server certificates.',
            format: String,
            default: '',
            env: 'TRITON_TLS_SERVER_NAME',
          },
        },
      },
      retry: {
        maxAttempts: {
          doc: 'Attempts per request, first one included.',
          format: 'nat',
          default: 3,
          env: 'RETRY_MAX_ATTEMPTS',
        },
        baseDelayMs: {
          doc: 'Backoff base (full jitter, doubled each retry).',
          format: 'nat',
          default: 20,
          env: 'RETRY_BASE_DELAY_MS',
        },
        maxDelayMs: {
          doc: 'Backoff cap.',
          format: 'nat',
          default: 1000,
          env: 'RETRY_MAX_DELAY_MS',
        },
        budgetRatio: {
          doc: 'Retries allowed as a fraction of recent requests (retry budget).',
          format: Number,
          default: 0.2,
          env: 'RETRY_BUDGET_RATIO',
        },
        budgetMinPerSecond: {
          doc: 'Retries per second always allowed, so low traffic can still retry.',
          format: Number,
          default: 5,
          env: 'RETRY_BUDGET_MIN_PER_SECOND',
        },
      },
      breaker: {
        errorThresholdPercent: {
          doc: 'Server-fault percentage over the rolling window that opens a server breaker.',
          format: 'nat',
          default: 50,
          env: 'BREAKER_ERROR_THRESHOLD_PERCENT',
        },
        volumeThreshold: {
          doc: 'Calls in the window before the breaker may open.',
          format: 'nat',
          default: 5,
          env: 'BREAKER_VOLUME_THRESHOLD',
        },
        resetTimeoutMs: {
          doc: 'How long a breaker stays open before it half-opens to probe.',
          format: 'nat',
          default: 5000,
          env: 'BREAKER_RESET_TIMEOUT_MS',
        },
        rollingWindowMs: {
          doc: 'Window over which breaker statistics are kept.',
          format: 'nat',
          default: 10000,
          env: 'BREAKER_ROLLING_WINDOW_MS',
        },
      },
      admission: {
        maxInflight: {
          doc: 'Requests in flight to Triton across all models.',
          format: 'nat',
          default: 512,
          env: 'MAX_INFLIGHT',
        },
        maxQueue: {
          doc: 'Requests waiting for admission across all models.',
          format: 'nat',
          default: 2048,
          env: 'MAX_QUEUE',
        },
        queueTimeoutMs: {
          doc: 'Longest wait in the admission queue (then 429).',
          format: 'nat',
          default: 5000,
          env: 'QUEUE_TIMEOUT_MS',
        },
        modelMaxInflight: {
          doc: 'Default in-flight limit per model.',
          format: 'nat',
          default: 128,
          env: 'MODEL_MAX_INFLIGHT',
        },
        modelMaxQueue: {
          doc: 'Default queue length per model.',
          format: 'nat',
          default: 512,
          env: 'MODEL_MAX_QUEUE',
        },
        modelLimits: {
          doc: 'Per-model overrides `model=inflight:queue,...`.',
          format: String,
          default: '',
          env: 'MODEL_LIMITS',
        },
        maxInflightBytes: {
          doc: 'Cap on request body bytes admitted at once (memory bound for tensors in flight).',
          format: 'nat',
          default: 1024 * MiB,
          env: 'MAX_INFLIGHT_BYTES',
        },
        retryAfterSeconds: {
          doc: 'Retry-After sent with 429 and 503 answers.',
          format: 'nat',
          default: 1,
          env: 'RETRY_AFTER_SECONDS',
        },
      },
      state: {
        redisUrl: {
          doc: 'Redis URL (redis:// or rediss://); empty = in-memory state, single replica.',
          format: String,
          default: '',
          env: 'REDIS_URL',
        },
        redisPassword: {
          doc: 'Redis password (overrides the URL).',
          format: String,
          default: '',
          env: 'REDIS_PASSWORD',
          sensitive: true,
        },
        redisTls: { doc: 'Use TLS to Redis.', format: Boolean, default: false, env: 'REDIS_TLS' },
        redisSentinels: {
          doc: 'Sentinels `host:port,...`; when set, REDIS_URL is not used for the address.',
          format: String,
          default: '',
          env: 'REDIS_SENTINELS',
        },
        redisSentinelName: {
          doc: 'Sentinel master name.',
          format: String,
          default: 'mymaster',
          env: 'REDIS_SENTINEL_NAME',
        },
        keyPrefix: {
          doc: 'Prefix of every Redis key and channel.',
          format: String,
          default: 'triton-proxy:',
          env: 'REDIS_KEY_PREFIX',
        },
        connectTimeoutMs: {
          doc: 'Redis connect timeout.',
          format: 'nat',
          default: 2000,
          env: 'REDIS_CONNECT_TIMEOUT_MS',
        },
        commandTimeoutMs: {
          doc: 'Redis command timeout.',
          format: 'nat',
          default: 1000,
          env: 'REDIS_COMMAND_TIMEOUT_MS',
        },
        keepAliveMs: {
          doc: 'TCP keepalive on the Redis socket.',
          format: 'nat',
          default: 10000,
          env: 'REDIS_KEEPALIVE_MS',
        },
        entryTtlMs: {
          doc: 'Model-state entries expire when not refreshed within this time.',
          format: 'nat',
          default: 120000,
          env: 'STATE_TTL_MS',
        },
        reconcileIntervalMs: {
          doc: "How often each server's repository index is read (one replica per server per interval).",
          format: 'nat',
          default: 15000,
          env: 'RECONCILE_INTERVAL_MS',
        },
        resyncIntervalMs: {
          doc: 'Full resync from Redis, repairing missed pub/sub messages.',
          format: 'nat',
          default: 30000,
          env: 'RESYNC_INTERVAL_MS',
        },
        readinessRequiresRedis: {
          doc: 'Whether /health/ready fails while Redis is unreachable.',
          format: Boolean,
          default: false,
          env: 'READINESS_REQUIRES_REDIS',
        },
        loadOnDemand: {
          doc: 'Load a model that is ready nowhere when a request asks for it.',
          format: Boolean,
          default: false,
          env: 'LOAD_ON_DEMAND',
        },
        loadTimeoutMs: {
          doc: 'Deadline of a model load.',
          format: 'nat',
          default: 120000,
          env: 'LOAD_TIMEOUT_MS',
        },
        loadLockTtlMs: {
          doc: 'Load lock expiry (a replica dying mid-load releases it after this).',
          format: 'nat',
          default: 30000,
          env: 'LOAD_LOCK_TTL_MS',
        },
        loadFailureBackoffMs: {
          doc: 'After a failed load, requests fail fast for this long.',
          format: 'nat',
          default: 10000,
          env: 'LOAD_FAILURE_BACKOFF_MS',
        },
      },
      cache: {
        models: {
          doc: 'Models whose answers are cached, `glob:ttl,...` (e.g. `embed-*:10m,classifier:30s`; ttl in ms, s, m or h). Deterministic models only; empty = nothing is cached.',
          format: String,
          default: '',
          env: 'CACHE_MODELS',
        },
        coalesceModels: {
          doc: 'Models whose identical in-flight requests share one upstream call: `CACHE_MODELS` (the cached models), `none`, or globs `pattern,...`.',
          format: String,
          default: 'CACHE_MODELS',
          env: 'COALESCE_MODELS',
        },
        maxBytes: {
          doc: 'Bytes the in-process cache may hold (least recently used answers are evicted).',
          format: 'nat',
          default: 256 * MiB,
          env: 'CACHE_MAX_BYTES',
        },
        maxEntryBytes: {
          doc: 'Largest answer (Triton response bytes) that is cached, in either tier.',
          format: 'nat',
          default: MiB,
          env: 'CACHE_MAX_ENTRY_BYTES',
        },
        shared: {
          doc: 'Share cached answers between replicas through Redis (needs REDIS_URL, REDIS_SENTINELS or CACHE_REDIS_URL).',
          format: Boolean,
          default: false,
          env: 'CACHE_SHARED',
        },
        redisUrl: {
          doc: "Redis for the shared cache tier (redis:// or rediss://); empty = the model state's Redis.",
          format: String,
          default: '',
          env: 'CACHE_REDIS_URL',
        },
        redisTimeoutMs: {
          doc: 'Longest wait for the shared cache tier on a local miss; slower or failed reads count as misses.',
          format: 'nat',
          default: 50,
          env: 'CACHE_REDIS_TIMEOUT_MS',
        },
      },
      // Triton compresses inference answers whenever Accept-Encoding asks;
      // the proxy does too, above a size where it pays. Level 1: measured on
      // a 3.9 MiB JSON answer, ratio 0.47 against level 6's 0.45 at 37% of
      // the CPU; float tensors hardly compress at any level (0.93).
      compression: {
        responses: {
          doc: "Compress inference answers (gzip or deflate) when the client's Accept-Encoding asks for it, as Triton does. The work runs on libuv's threadpool, streamed to the client.",
          format: Boolean,
          default: true,
          env: 'RESPONSE_COMPRESSION',
        },
        minBytes: {
          doc: 'Inference answers smaller than this go uncompressed even when the client accepts gzip or deflate (0 = compress every answer the client asks to).',
          format: 'nat',
          default: 1024,
          env: 'RESPONSE_COMPRESSION_MIN_BYTES',
        },
        level: {
          doc: 'zlib compression level of answers, 1 (fastest) to 9 (smallest).',
          format: 'nat',
          default: 1,
          env: 'RESPONSE_COMPRESSION_LEVEL',
        },
      },
      lifecycle: {
        shutdownDelayMs: {
          doc: 'After SIGTERM or SIGINT, keep serving (readiness false) this long so endpoints are removed first. Not applied with DEMO_BACKEND (no Service to leave: Ctrl-C stops the demo at once).',
          format: 'nat',
          default: 5000,
          env: 'SHUTDOWN_DELAY_MS',
        },
        shutdownGraceMs: {
          doc: 'Then finish in-flight and queued requests within this time before forcing exit.',
          format: 'nat',
          default: 25000,
          env: 'SHUTDOWN_GRACE_MS',
        },
      },
      log: {
        level: {
          doc: 'Log level.',
          format: ['error', 'warn', 'info', 'debug'],
          default: 'info',
          env: 'LOG_LEVEL',
        },
        format: {
          doc: 'Log format.',
          format: ['json', 'pretty'],
          default: 'json' as 'json' | 'pretty',
          env: 'LOG_FORMAT',
        },
      },
      metrics: {
        modelLabelLimit: {
          doc: 'Distinct model label values in metrics; further models are reported as "other".',
          format: 'nat',
          default: 100,
          env: 'METRICS_MODEL_LABEL_LIMIT',
        },
      },
      status: {
        refreshSeconds: {
          doc: 'The /status page reloads itself this often (seconds); 0 turns the reload off.',
          format: 'nat',
          default: 5,
          env: 'STATUS_REFRESH_SECONDS',
        },
        recentErrors: {
          doc: 'Failed requests kept for /status and /status.json (the last N, in a fixed ring).',
          format: 'nat',
          default: 50,
          env: 'STATUS_RECENT_ERRORS',
        },
      },
      tracing: {
        enabled: {
          doc: 'Accept W3C traceparent, forward it to Triton and log the trace id (implied when an OTLP endpoint is set).',
          format: Boolean,
          default: false,
          env: 'TRACING_ENABLED',
        },
        otlpEndpoint: {
          doc: 'OpenTelemetry: base URL of an OTLP/HTTP collector (`v1/traces` is appended); setting it turns span export on. Empty: no spans, no SDK loaded.',
          format: String,
          default: '',
          env: 'OTEL_EXPORTER_OTLP_ENDPOINT',
        },
        otlpTracesEndpoint: {
          doc: 'OpenTelemetry: full OTLP/HTTP URL for spans (used as is; wins over OTEL_EXPORTER_OTLP_ENDPOINT).',
          format: String,
          default: '',
          env: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
        },
        serviceName: {
          doc: 'OpenTelemetry: service.name of the spans.',
          format: String,
          default: 'triton-proxy',
          env: 'OTEL_SERVICE_NAME',
        },
        sampler: {
          doc: 'OpenTelemetry sampler: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio.',
          format: [...TRACE_SAMPLERS],
          default: 'parentbased_always_on' as TraceSamplerName,
          env: 'OTEL_TRACES_SAMPLER',
        },
        samplerArg: {
          doc: 'OpenTelemetry sampler argument: the ratio (0..1) of the traceidratio samplers; empty means 1.',
          format: String,
          default: '',
          env: 'OTEL_TRACES_SAMPLER_ARG',
        },
        sdkDisabled: {
          doc: 'OpenTelemetry: true turns span export off even with an endpoint set.',
          format: Boolean,
          default: false,
          env: 'OTEL_SDK_DISABLED',
        },
        batchDelayMs: {
          doc: 'OpenTelemetry: the longest a finished span waits before its batch is sent (ms).',
          format: 'nat',
          default: 5000,
          env: 'OTEL_BSP_SCHEDULE_DELAY',
        },
        batchExportTimeoutMs: {
          doc: 'OpenTelemetry: how long one batch export may take before it counts as failed (ms).',
          format: 'nat',
          default: 30000,
          env: 'OTEL_BSP_EXPORT_TIMEOUT',
        },
        batchMaxQueueSize: {
          doc: 'OpenTelemetry: finished spans kept waiting for export; more are dropped.',
          format: 'nat',
          default: 2048,
          env: 'OTEL_BSP_MAX_QUEUE_SIZE',
        },
        batchMaxExportBatchSize: {
          doc: 'OpenTelemetry: spans per export request; at most OTEL_BSP_MAX_QUEUE_SIZE.',
          format: 'nat',
          default: 512,
          env: 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
        },
      },
      demo: {
        backend: {
          doc: 'Start the built-in fake Triton in-process and use it as the only server (demo only).',
          format: Boolean,
          default: false,
          env: 'DEMO_BACKEND',
        },
      },
      replicaId: {
        doc: 'Name of this replica in shared state (defaults to hostname-pid).',
        format: String,
        default: '',
        env: 'REPLICA_ID',
      },
    },
    options as { env?: Record<string, string>; args?: string[] },
  );
}

export type ConfigSchema = ReturnType<typeof buildSchema>;
