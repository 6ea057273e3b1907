import {
  status,
  type Metadata,
  type ServerDuplexStream,
  type UntypedServiceImplementation,
  type handleUnaryCall,
} from '@grpc/grpc-js';
import type { CallCounter } from './call-counter';
import type { CallGate } from './call-gate';
import { Faults, type StreamFailure } from './faults';
import { runInference } from './infer';
import { modelConfig, type ModelRepository } from './repository';
import { UNIMPLEMENTED_RPCS, type RpcName } from './rpc-names';
import type { ServerSettings, WireLogSettingsRequest, WireTraceSettingsRequest } from './settings';
import { TritonError, invalidArgument, parseModelVersion, serverNotReady } from './triton-error';
import type {
  WireInferRequest,
  WireInferResponse,
  WireModelRequest,
  WireRepositoryIndexRequest,
  WireRepositoryModelRequest,
  WireStreamInferResponse,
} from './wire';

/** The last inference request a fake received, as proto-loader decoded it. */
export interface RecordedRequest {
  rpc: 'ModelInfer' | 'ModelStreamInfer';
  request: WireInferRequest;
  metadata: Metadata;
}

/** Everything the handlers read or change; owned by the FakeTriton. */
export interface ServiceState {
  readonly repository: ModelRepository;
  readonly counter: CallCounter;
  readonly gate: CallGate;
  readonly faults: Faults;
  readonly serverName: string;
  readonly serverVersion: string;
  readonly extensions: readonly string[];
  /** Log and trace settings (LogSettings, TraceSetting). */
  readonly settings: ServerSettings;
  serverReady: boolean;
  lastRequest: RecordedRequest | undefined;
  /** ModelStreamInfer streams opened and cancelled by clients, and responses written on them. */
  readonly streams: StreamCounts;
}

export interface StreamCounts {
  opened: number;
  cancelled: number;
  responsesWritten: number;
}

type Outcome<T> = T | TritonError;

/** The inference.GRPCInferenceService implementation over a fake's state. */
export function createServiceImplementation(state: ServiceState): UntypedServiceImplementation {
  const { repository } = state;

  function unary<Req, Res>(
    rpc: RpcName,
    modelOf: ((request: Req) => string) | null,
    handle: (request: Req, metadata: Metadata) => Outcome<Res> | Promise<Outcome<Res>>,
    arrived?: (request: Req, metadata: Metadata) => void,
  ): handleUnaryCall<Req, Res> {
    return (call, callback) => {
      state.counter.recordCall(rpc);
      call.once('cancelled', () => state.counter.recordCancelled(rpc));
      const model = modelOf === null ? '' : modelOf(call.request);
      if (modelOf !== null) state.counter.recordModel(rpc, model);
      arrived?.(call.request, call.metadata);
      const finish = (outcome: Outcome<Res>) => {
        if (outcome instanceof TritonError) callback(outcome.toStatus());
        else callback(null, outcome);
      };
      // A bug in the fake (or in a test's model) answers INTERNAL instead of killing the test run.
      const crash = (error: unknown) =>
        callback({ code: status.INTERNAL, details: `fake Triton ${rpc} failed: ${String(error)}` });
      state.gate.admit(
        rpc,
        model,
        call.metadata,
        () => {
          try {
            const outcome = handle(call.request, call.metadata);
            if (outcome instanceof Promise) outcome.then(finish, crash);
            else finish(outcome);
          } catch (error) {
            crash(error);
          }
        },
        (error) => callback(error.toStatus()),
      );
    };
  }

  const resolveModel = (request: WireModelRequest) => {
    const version = parseModelVersion(request.version);
    if (version instanceof TritonError) return version;
    const model = repository.resolve(request.name, version);
    return model instanceof TritonError ? model : { model, version };
  };

  const repositoryNameProblem = (request: { repository_name: string }) =>
    request.repository_name === ''
      ? null
      : new TritonError(status.UNIMPLEMENTED, "'repository_name' specification is not supported");

  const byName = (request: WireModelRequest) => request.name;
  const byModelName = (request: { model_name: string }) => request.model_name;

  const implementation: UntypedServiceImplementation = {
    ServerLive: unary('ServerLive', null, () => ({ live: true })),

    ServerReady: unary('ServerReady', null, () => ({ ready: state.serverReady })),

    // Triton answers an unknown or unready model with an error status, not ready=false.
    ModelReady: unary('ModelReady', byName, (request: WireModelRequest) => {
      const resolved = resolveModel(request);
      if (resolved instanceof TritonError) return resolved;
      return state.serverReady ? { ready: true } : serverNotReady();
    }),

    ServerMetadata: unary('ServerMetadata', null, () => ({
      name: state.serverName,
      version: state.serverVersion,
      extensions: [...state.extensions],
    })),

    ModelMetadata: unary('ModelMetadata', byName, (request: WireModelRequest) => {
      const resolved = resolveModel(request);
      if (resolved instanceof TritonError) return resolved;
      if (!state.serverReady) return serverNotReady();
      return repository.metadata(resolved.model, resolved.version);
    }),

    ModelConfig: unary('ModelConfig', byName, (request: WireModelRequest) => {
      const resolved = resolveModel(request);
      if (resolved instanceof TritonError) return resolved;
      return { config: modelConfig(resolved.model.definition) };
    }),

    ModelStatistics: unary('ModelStatistics', byName, (request: WireModelRequest) => {
      const version = parseModelVersion(request.version);
      if (version instanceof TritonError) return version;
      if (!state.serverReady) return serverNotReady();
      const stats = repository.statistics(request.name, version);
      return stats instanceof TritonError ? stats : { model_stats: stats };
    }),

    RepositoryIndex: unary('RepositoryIndex', null, (request: WireRepositoryIndexRequest) => {
      const problem = repositoryNameProblem(request);
      if (problem !== null) return problem;
      if (!state.serverReady) return serverNotReady();
      return { models: repository.index(request.ready) };
    }),

    RepositoryModelLoad: unary(
      'RepositoryModelLoad',
      byModelName,
      async (request: WireRepositoryModelRequest) => {
        const problem = repositoryNameProblem(request) ?? loadParameterProblem(request);
        if (problem !== null) return problem;
        if (!state.serverReady) return serverNotReady();
        const error = await repository.load(request.model_name);
        return error ?? {};
      },
    ),

    RepositoryModelUnload: unary(
      'RepositoryModelUnload',
      byModelName,
      (request: WireRepositoryModelRequest) => {
        const problem = repositoryNameProblem(request) ?? unloadParameterProblem(request);
        if (problem !== null) return problem;
        if (!state.serverReady) return serverNotReady();
        repository.unload(request.model_name);
        return {};
      },
    ),

    LogSettings: unary('LogSettings', null, (request: WireLogSettingsRequest) => {
      const error = state.settings.updateLog(request);
      return error ?? state.settings.logSettings();
    }),

    // Triton checks the named model is ready before reading or changing its settings.
    TraceSetting: unary(
      'TraceSetting',
      (request: WireTraceSettingsRequest) => request.model_name,
      (request: WireTraceSettingsRequest) => {
        if (
          request.model_name !== '' &&
          repository.resolve(request.model_name, -1) instanceof TritonError
        )
          return invalidArgument(`Request for unknown model : ${request.model_name}`);
        if (Object.keys(request.settings).length > 0) {
          const error = state.settings.updateTrace(request);
          if (error !== null) return error;
        }
        return state.settings.traceSettings(request.model_name);
      },
    ),

    ModelInfer: unary(
      'ModelInfer',
      byModelName,
      (request: WireInferRequest): Outcome<WireInferResponse> => {
        const result = runInference(request, {
          repository,
          rpc: 'ModelInfer',
          serverReady: state.serverReady,
        });
        return result instanceof TritonError ? result : result.responses[0]!;
      },
      // Recorded on arrival, so a test sees what was sent even when the call is failed or held.
      (request, metadata) => {
        state.lastRequest = { rpc: 'ModelInfer', request, metadata };
      },
    ),

    // Failures and hanging apply to the stream as a whole (unless steered to
    // fail mid-stream); latency to each of its messages.
    ModelStreamInfer: (call: ServerDuplexStream<WireInferRequest, WireStreamInferResponse>) => {
      state.counter.recordCall('ModelStreamInfer');
      state.streams.opened++;
      const failure = Faults.failsMidStream(call.metadata)
        ? null
        : state.faults.failureFor('ModelStreamInfer', '', call.metadata);
      const fail = (error: TritonError) => call.emit('error', error.toStatus());
      state.gate.schedule(
        0,
        failure === null ? () => serveStream(state, call) : () => fail(failure),
        fail,
      );
    },
  };

  for (const rpc of UNIMPLEMENTED_RPCS) {
    implementation[rpc] = unary(
      rpc,
      null,
      () => new TritonError(status.UNIMPLEMENTED, `${rpc} is not supported by the fake Triton`),
    );
  }
  return implementation;
}

/**
 * One stream: every request is answered in order with its responses, each
 * marked with `triton_final_response` as Triton's stream handler does
 * (server src/grpc/stream_infer_handler.cc). Request errors travel in-stream
 * as `error_message`; the stream itself stays open. A decoupled model's
 * responses are spaced by its interval, and writing waits while the client
 * reads nothing (flow control), as a server's does. A client cancel stops
 * the responses at once and is counted.
 */
function serveStream(
  state: ServiceState,
  call: ServerDuplexStream<WireInferRequest, WireStreamInferResponse>,
): void {
  let pending = 0;
  let ended = false;
  let failed = false;
  let cancelled = false;
  let chain = Promise.resolve();
  const endIfDone = () => {
    if (ended && pending === 0 && !failed && !cancelled) call.end();
  };
  const fail = (error: TritonError) => {
    if (failed || cancelled) return;
    failed = true;
    call.emit('error', error.toStatus());
  };
  const stopped = () => failed || cancelled;
  const wait = (ms: number) =>
    new Promise<boolean>((resolve) => state.gate.schedule(ms, () => resolve(true), fail));
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        call.off('drain', done);
        call.off('cancelled', done);
        resolve();
      };
      call.on('drain', done);
      call.on('cancelled', done);
    });

  const answer = async (request: WireInferRequest, failure: StreamFailure | null) => {
    const delayMs = state.faults.delayFor('ModelStreamInfer', request.model_name, call.metadata);
    if (delayMs > 0 || state.gate.isHanging) await wait(delayMs);
    if (stopped()) return;
    const { messages, intervalMs } = streamResponses(state, request);
    const interval = Faults.responseIntervalFor(call.metadata) ?? intervalMs;
    for (let i = 0; i <= messages.length; i++) {
      if (failure !== null && i === failure.afterResponses) {
        if (!failure.inStream) {
          fail(failure.error);
          return;
        }
        const error = emptyResponse(request, '');
        error.parameters = { triton_final_response: { bool_param: true } };
        call.write({ error_message: failure.error.details, infer_response: error });
        return;
      }
      if (i === messages.length) return;
      if (i > 0 && interval > 0) await wait(interval);
      if (stopped()) return;
      const writable = call.write(messages[i]!);
      state.streams.responsesWritten++;
      if (!writable) await drained();
      if (stopped()) return;
    }
  };

  call.on('data', (request: WireInferRequest) => {
    state.counter.recordModel('ModelStreamInfer', request.model_name);
    state.lastRequest = { rpc: 'ModelStreamInfer', request, metadata: call.metadata };
    pending++;
    const failure = state.faults.streamFailureFor(request.model_name, call.metadata);
    chain = chain
      .then(() => answer(request, failure))
      .catch((error: unknown) =>
        fail(new TritonError(status.INTERNAL, `fake Triton stream failed: ${String(error)}`)),
      )
      .finally(() => {
        pending--;
        endIfDone();
      });
  });
  call.on('end', () => {
    ended = true;
    endIfDone();
  });
  call.on('cancelled', () => {
    if (cancelled) return;
    cancelled = true;
    state.streams.cancelled++;
  });
  // A cancelled stream has no one to answer; errors here are the client going away.
  call.on('error', () => undefined);
}

function streamResponses(
  state: ServiceState,
  request: WireInferRequest,
): { messages: WireStreamInferResponse[]; intervalMs: number } {
  const result = runInference(request, {
    repository: state.repository,
    rpc: 'ModelStreamInfer',
    serverReady: state.serverReady,
  });
  if (result instanceof TritonError) {
    const error = emptyResponse(request, '');
    error.parameters = { triton_final_response: { bool_param: true } };
    return { messages: [{ error_message: result.details, infer_response: error }], intervalMs: 0 };
  }
  const messages: WireStreamInferResponse[] = result.responses.map((response) => ({
    error_message: '',
    infer_response: {
      ...response,
      parameters: { triton_final_response: { bool_param: !result.decoupled } },
    },
  }));
  const wantsEmptyFinal =
    request.parameters['triton_enable_empty_final_response']?.bool_param === true;
  if (result.decoupled && wantsEmptyFinal) {
    const final = emptyResponse(request, result.version);
    final.parameters = { triton_final_response: { bool_param: true } };
    messages.push({ error_message: '', infer_response: final });
  }
  return { messages, intervalMs: result.intervalMs };
}

function emptyResponse(request: WireInferRequest, version: string): WireInferResponse {
  return {
    model_name: request.model_name,
    model_version: version,
    id: request.id,
    parameters: {},
    outputs: [],
    raw_output_contents: [],
  };
}

/** server grpc_server.cc, RepositoryModelLoad: only `config` (string) and `file:*` (bytes) are accepted. */
function loadParameterProblem(request: WireRepositoryModelRequest): TritonError | null {
  for (const [key, value] of Object.entries(request.parameters)) {
    if (key === 'config') {
      if (value.parameter_choice !== 'string_param') {
        return invalidArgument(
          `invalid value type for load parameter '${key}', expected string_param.`,
        );
      }
    } else if (key.startsWith('file:')) {
      if (value.parameter_choice !== 'bytes_param') {
        return invalidArgument(
          `invalid value type for load parameter '${key}', expected bytes_param.`,
        );
      }
    } else {
      return invalidArgument(`unrecognized load parameter '${key}'.`);
    }
  }
  return null;
}

function unloadParameterProblem(request: WireRepositoryModelRequest): TritonError | null {
  const param = request.parameters['unload_dependents'];
  if (param !== undefined && param.parameter_choice !== 'bool_param') {
    return invalidArgument(
      "invalid value type for 'unload_dependents' parameter, expected bool_param.",
    );
  }
  return null;
}
