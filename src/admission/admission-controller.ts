import { ProxyError, payloadTooLarge } from '../errors';
import {
  resolveAdmissionOptions,
  type AdmissionOptions,
  type AdmissionPriority,
  type AdmissionRejectReason,
  type ResolvedAdmissionOptions,
} from './admission-options';
import { ClientGoneError } from './client-gone-error';
import { IntrusiveList, type ListNode } from './intrusive-list';

/** The right to have one request in flight. Release it in a `finally`. */
export interface Permit {
  readonly model: string;
  readonly bytes: number;
  /** Frees the slot and wakes the next eligible waiter; later calls do nothing. */
  release(): void;
}

/**
 * Request and response bytes held in memory, reserved before they are read:
 * the HTTP layer takes one before reading a body and keeps it until the
 * answer is written, so MAX_INFLIGHT_BYTES bounds tensor memory.
 */
export interface ByteReservation {
  readonly bytes: number;
  /** Adds bytes that arrived beyond the reservation (chunked or inflated bodies); throws when over the cap. */
  grow(bytes: number): void;
  /** Adds bytes already in memory (an answer being written): counted even over the cap. */
  hold(bytes: number): void;
  /** Returns every byte; later calls do nothing. */
  release(): void;
}

export interface ModelAdmissionStats {
  inflight: number;
  queued: number;
  maxInflight: number;
  maxQueue: number;
}

export interface AdmissionStats {
  inflight: number;
  queued: number;
  inflightBytes: number;
  accepting: boolean;
  byModel: ReadonlyMap<string, ModelAdmissionStats>;
  /** Requests refused or dropped from the queue since start, by reason. */
  rejected: Readonly<Partial<Record<AdmissionRejectReason, number>>>;
}

/** One model's limits, counters and FIFO queue; also a node of the ready ring. */
class ModelState implements ListNode<ModelState> {
  prev: ModelState | undefined = undefined;
  next: ModelState | undefined = undefined;
  listed = false;
  inflight = 0;
  /** Waiters by priority, then arrival: the highs, the normals, then the lows. */
  readonly queue = new IntrusiveList<Waiter>();
  /** Last high and last normal waiter, where the next of each priority is inserted (O(1)). */
  lastHigh: Waiter | undefined = undefined;
  lastNormal: Waiter | undefined = undefined;

  constructor(
    readonly name: string,
    readonly maxInflight: number,
    readonly maxQueue: number,
  ) {}
}

class Waiter implements ListNode<Waiter> {
  prev: Waiter | undefined = undefined;
  next: Waiter | undefined = undefined;
  listed = false;
  timer: NodeJS.Timeout | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly state: ModelState,
    readonly bytes: number,
    readonly enqueuedAt: number,
    readonly signal: AbortSignal | undefined,
    /** The request's own deadline (ms since epoch), when it ends the wait before the queue timeout. */
    readonly deadline: number | undefined,
    readonly priority: AdmissionPriority,
    readonly resolve: (permit: Permit) => void,
    readonly reject: (error: Error) => void,
  ) {}
}

class Slot implements Permit {
  private released = false;

  constructor(
    private readonly state: ModelState,
    readonly bytes: number,
    private readonly onRelease: (state: ModelState, bytes: number) => void,
  ) {}

  get model(): string {
    return this.state.name;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease(this.state, this.bytes);
  }
}

/**
 * Concurrency limits per model and overall, each with a bounded FIFO queue, a
 * queue timeout and a cap on in-flight body bytes (the bulkhead in front of
 * Triton).
 *
 * Fairness. A request needs a slot of its model and a global slot. Each model
 * has its own FIFO queue; the models whose queue head is allowed by the
 * model's own limit form a "ready ring", and freed global slots go round-robin
 * over that ring. So:
 * - a model at its own limit is not in the ring and never holds up other
 *   models' requests waiting for global slots (no head-of-line blocking
 *   across models, which one global FIFO would cause);
 * - a model with a deep backlog gets one global slot per turn, not all of
 *   them, so a burst on one model cannot starve the others; a strict global
 *   FIFO by arrival time would let it;
 * - every step is O(1): no scan over models or waiters.
 * The byte cap is the exception to skipping: when the head chosen next does
 * not fit the remaining byte budget, dispatch stops there until enough bytes
 * are released, so a large request is never starved by smaller ones slipping
 * past it. The cap is a memory guard that should rarely bind, so this brief
 * stall is the better trade.
 *
 * Immediate admission (the common case) allocates only the permit and its
 * resolved promise: no timer, no listener, no queue node.
 */
export class AdmissionController {
  private readonly options: ResolvedAdmissionOptions;
  private readonly models = new Map<string, ModelState>();
  private readonly ready = new IntrusiveList<ModelState>();
  /** Next model of the ready ring to serve; undefined means the ring's head. */
  private cursor: ModelState | undefined = undefined;
  private inflight = 0;
  private queued = 0;
  private inflightBytes = 0;
  /** Queued low-priority waiters in arrival order: the first to shed. */
  private readonly lowWaiters = new Set<Waiter>();
  private accepting = true;
  private drainWaiters: Array<() => void> = [];
  private readonly rejected: Partial<Record<AdmissionRejectReason, number>> = {};

  constructor(options: AdmissionOptions) {
    this.options = resolveAdmissionOptions(options);
  }

  /**
   * Resolves with a permit once the request may go upstream. Rejects with
   * OVERLOADED (429, Retry-After) when the model's or the global queue is full
   * or the queue wait exceeds queueTimeoutMs; PAYLOAD_TOO_LARGE (413) when
   * `bytes` alone exceeds maxInflightBytes; UPSTREAM_UNAVAILABLE (503) after
   * stopAccepting(); ClientGoneError when `signal` aborts before admission;
   * UPSTREAM_TIMEOUT (504) when `deadline` (ms since epoch, the request's
   * own) comes before a slot and before the queue timeout: a 429 would tell
   * the client to retry a request whose time is already spent.
   */
  acquire(
    model: string,
    bytes: number,
    signal?: AbortSignal,
    deadline?: number,
    priority: AdmissionPriority = 'normal',
  ): Promise<Permit> {
    if (!Number.isFinite(bytes) || bytes < 0) {
      return Promise.reject(new RangeError(`request bytes must be a finite number >= 0`));
    }
    const { options } = this;
    if (!this.accepting) {
      return this.rejectNow(
        'shutting_down',
        model,
        new ProxyError(
          'UPSTREAM_UNAVAILABLE',
          'proxy is shutting down and accepts no new requests',
          {
            retryAfterSeconds: options.retryAfterSeconds,
          },
        ),
      );
    }
    if (bytes > options.maxInflightBytes) {
      return this.rejectNow(
        'bytes',
        model,
        payloadTooLarge(
          `request body of ${bytes} bytes exceeds the in-flight limit of ${options.maxInflightBytes} bytes`,
        ),
      );
    }
    if (signal?.aborted === true) {
      return this.rejectNow('client_gone', model, new ClientGoneError(model, signal.reason));
    }

    const state = this.stateFor(model);
    if (
      this.inflight < options.maxInflight &&
      this.ready.size === 0 &&
      state.queue.size === 0 &&
      state.inflight < state.maxInflight &&
      this.inflightBytes + bytes <= options.maxInflightBytes
    ) {
      const permit = this.admit(state, bytes);
      options.hooks.onQueueWait(0, model);
      return Promise.resolve(permit);
    }

    if (
      (state.queue.size >= state.maxQueue || this.queued >= options.maxQueue) &&
      !this.shedLowFor(state, priority)
    ) {
      const message =
        state.queue.size >= state.maxQueue
          ? `admission queue for model '${model}' is full (${state.maxQueue} waiting)`
          : `admission queue is full (${options.maxQueue} waiting across all models)`;
      this.forgetIfIdle(state);
      return this.rejectNow(
        'queue_full',
        model,
        new ProxyError('OVERLOADED', message, { retryAfterSeconds: options.retryAfterSeconds }),
      );
    }
    return this.enqueue(state, bytes, signal, deadline, priority);
  }

  /**
   * A full queue refuses a low-priority request, but a normal or high one
   * takes the place of a queued low one, which is answered 429 at once: low
   * clients are shed before anyone else is refused. From the model's own
   * queue when that is the full one, else the longest-waiting low request.
   */
  private shedLowFor(state: ModelState, priority: AdmissionPriority): boolean {
    if (priority === 'low') return false;
    const victim =
      state.queue.size >= state.maxQueue
        ? state.queue.tail?.priority === 'low'
          ? state.queue.tail
          : undefined
        : this.lowWaiters.values().next().value;
    if (victim === undefined) return false;
    this.leaveQueue(
      victim,
      'shed',
      new ProxyError(
        'OVERLOADED',
        `request for model '${victim.state.name}' was shed: the proxy is saturated and this client has low priority`,
        { retryAfterSeconds: this.options.retryAfterSeconds },
      ),
    );
    return true;
  }

  /**
   * Reserves `bytes` of the in-flight byte budget at once, or refuses at
   * once: PAYLOAD_TOO_LARGE (413) when they alone exceed it, OVERLOADED (429,
   * Retry-After) when the budget is taken by others. No waiting: a body not
   * yet read costs nothing, and making its sender wait would only hold a
   * connection. Requests whose bytes were reserved here acquire their slot
   * with 0 bytes.
   */
  reserveBytes(bytes: number): ByteReservation {
    const max = this.options.maxInflightBytes;
    if (bytes > max) {
      this.countRejection('bytes');
      this.options.hooks.onReject('bytes', '');
      throw payloadTooLarge(
        `request body of ${bytes} bytes exceeds the in-flight limit of ${max} bytes`,
      );
    }
    this.takeBytes(bytes);
    let held = bytes;
    let released = false;
    return {
      get bytes() {
        return held;
      },
      grow: (more: number) => {
        if (released) return;
        this.takeBytes(more);
        held += more;
      },
      hold: (more: number) => {
        if (released) return;
        this.inflightBytes += more;
        held += more;
        this.publishBytes();
      },
      release: () => {
        if (released) return;
        released = true;
        this.inflightBytes -= held;
        this.publishBytes();
        this.dispatch();
      },
    };
  }

  private takeBytes(bytes: number): void {
    const max = this.options.maxInflightBytes;
    if (this.inflightBytes + bytes > max) {
      this.countRejection('bytes_full');
      this.options.hooks.onReject('bytes_full', '');
      throw new ProxyError(
        'OVERLOADED',
        `in-flight request bytes are at their limit (${this.inflightBytes} of ${max} bytes held); retry shortly`,
        { retryAfterSeconds: this.options.retryAfterSeconds },
      );
    }
    this.inflightBytes += bytes;
    this.publishBytes();
  }

  private publishBytes(): void {
    this.options.hooks.onBytesChange(this.inflightBytes);
  }

  /** New acquires fail with 503 from now on; queued requests are still served. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Resolves once nothing is in flight or queued (at once if idle). New
   * arrivals keep it pending, so shutdown calls stopAccepting() first.
   */
  drain(): Promise<void> {
    if (this.inflight === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private countRejection(reason: AdmissionRejectReason): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
  }

  stats(): AdmissionStats {
    const byModel = new Map<string, ModelAdmissionStats>();
    for (const state of this.models.values()) {
      byModel.set(state.name, {
        inflight: state.inflight,
        queued: state.queue.size,
        maxInflight: state.maxInflight,
        maxQueue: state.maxQueue,
      });
    }
    return {
      inflight: this.inflight,
      queued: this.queued,
      inflightBytes: this.inflightBytes,
      accepting: this.accepting,
      byModel,
      rejected: { ...this.rejected },
    };
  }

  private stateFor(model: string): ModelState {
    let state = this.models.get(model);
    if (state === undefined) {
      const limits = this.options.modelOverrides.get(model) ?? this.options.modelDefaults;
      state = new ModelState(model, limits.maxInflight, limits.maxQueue);
      this.models.set(model, state);
    }
    return state;
  }

  /** Clients pick model names, so idle records cannot be kept without bound. */
  private forgetIfIdle(state: ModelState): void {
    if (
      state.inflight === 0 &&
      state.queue.size === 0 &&
      this.models.size > this.options.maxIdleModels
    ) {
      this.models.delete(state.name);
    }
  }

  private rejectNow(reason: AdmissionRejectReason, model: string, error: Error): Promise<Permit> {
    this.countRejection(reason);
    this.options.hooks.onReject(reason, model);
    return Promise.reject(error);
  }

  private admit(state: ModelState, bytes: number): Permit {
    state.inflight++;
    this.inflight++;
    this.inflightBytes += bytes;
    this.updateReady(state);
    this.options.hooks.onInflightChange(
      state.name,
      state.inflight,
      this.inflight,
      this.inflightBytes,
    );
    return new Slot(state, bytes, this.releaseSlot);
  }

  private readonly releaseSlot = (state: ModelState, bytes: number): void => {
    state.inflight--;
    this.inflight--;
    this.inflightBytes -= bytes;
    this.updateReady(state);
    this.options.hooks.onInflightChange(
      state.name,
      state.inflight,
      this.inflight,
      this.inflightBytes,
    );
    this.dispatch();
    this.forgetIfIdle(state);
    this.settleDrain();
  };

  private enqueue(
    state: ModelState,
    bytes: number,
    signal: AbortSignal | undefined,
    deadline: number | undefined,
    priority: AdmissionPriority,
  ): Promise<Permit> {
    return new Promise<Permit>((resolve, reject) => {
      const untilDeadline = deadline === undefined ? Infinity : Math.max(0, deadline - Date.now());
      const byDeadline = untilDeadline < this.options.queueTimeoutMs;
      const waiter = new Waiter(
        state,
        bytes,
        performance.now(),
        signal,
        byDeadline ? deadline : undefined,
        priority,
        resolve,
        reject,
      );
      if (priority === 'high') {
        state.queue.insertAfter(waiter, state.lastHigh);
        state.lastHigh = waiter;
      } else if (priority === 'normal') {
        state.queue.insertAfter(waiter, state.lastNormal ?? state.lastHigh);
        state.lastNormal = waiter;
      } else {
        state.queue.push(waiter);
        this.lowWaiters.add(waiter);
      }
      this.queued++;
      this.updateReady(state);
      waiter.timer = setTimeout(
        this.expire,
        byDeadline ? untilDeadline : this.options.queueTimeoutMs,
        waiter,
      );
      if (signal !== undefined) {
        waiter.onAbort = () => this.abandon(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.options.hooks.onQueueChange(state.name, state.queue.size, this.queued);
    });
  }

  private dequeue(waiter: Waiter): void {
    const { state } = waiter;
    // The class runs are contiguous, so the one before the last of a class is of that class or none.
    if (state.lastHigh === waiter) {
      state.lastHigh = waiter.prev;
    } else if (state.lastNormal === waiter) {
      state.lastNormal = waiter.prev?.priority === 'normal' ? waiter.prev : undefined;
    }
    this.lowWaiters.delete(waiter);
    state.queue.remove(waiter);
    this.queued--;
    clearTimeout(waiter.timer);
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.updateReady(state);
    this.options.hooks.onQueueChange(state.name, state.queue.size, this.queued);
  }

  private readonly expire = (waiter: Waiter): void => {
    if (!waiter.listed) return;
    if (waiter.deadline !== undefined) {
      const waited = Math.round(performance.now() - waiter.enqueuedAt);
      this.leaveQueue(
        waiter,
        'deadline',
        new ProxyError(
          'UPSTREAM_TIMEOUT',
          `request for model '${waiter.state.name}' reached its deadline after waiting ${waited} ms for an admission slot`,
        ),
      );
      return;
    }
    this.leaveQueue(
      waiter,
      'queue_timeout',
      new ProxyError(
        'OVERLOADED',
        `request for model '${waiter.state.name}' waited ${this.options.queueTimeoutMs} ms without an admission slot`,
        { retryAfterSeconds: this.options.retryAfterSeconds },
      ),
    );
  };

  private abandon(waiter: Waiter): void {
    if (!waiter.listed) return;
    this.leaveQueue(
      waiter,
      'client_gone',
      new ClientGoneError(waiter.state.name, waiter.signal?.reason),
    );
  }

  private leaveQueue(waiter: Waiter, reason: AdmissionRejectReason, error: Error): void {
    this.dequeue(waiter);
    this.countRejection(reason);
    this.options.hooks.onReject(reason, waiter.state.name);
    waiter.reject(error);
    // The departed waiter may have been the head holding back on the byte cap.
    this.dispatch();
    this.forgetIfIdle(waiter.state);
    this.settleDrain();
  }

  /** Keeps the ring invariant: a model is in it iff its queue head is allowed by its own limit. */
  private updateReady(state: ModelState): void {
    const eligible = state.queue.size > 0 && state.inflight < state.maxInflight;
    if (eligible && !state.listed) {
      this.ready.push(state);
    } else if (!eligible && state.listed) {
      if (this.cursor === state) this.cursor = state.next;
      this.ready.remove(state);
    }
  }

  /** Hands free global slots round-robin to the models in the ready ring. */
  private dispatch(): void {
    const { options } = this;
    while (this.inflight < options.maxInflight) {
      const state = this.cursor ?? this.ready.head;
      if (state === undefined) return;
      const waiter = state.queue.head;
      if (waiter === undefined)
        throw new Error('admission ready ring holds a model with no waiter');
      if (this.inflightBytes + waiter.bytes > options.maxInflightBytes) return;
      this.cursor = state.next;
      this.dequeue(waiter);
      const permit = this.admit(state, waiter.bytes);
      options.hooks.onQueueWait((performance.now() - waiter.enqueuedAt) / 1000, state.name);
      waiter.resolve(permit);
    }
  }

  private settleDrain(): void {
    if (this.drainWaiters.length === 0 || this.inflight > 0 || this.queued > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
