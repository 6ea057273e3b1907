"""A Triton stand-in on gRPC's C core (grpcio), for the benchmark.

It serves inference.GRPCInferenceService with the few RPCs the proxy needs to
route to it (ServerLive, ServerReady, ModelReady, RepositoryIndex) and
ModelInfer for two models:

  simple        INPUT0, INPUT1 INT32 [1,16] -> OUTPUT0 = sum, OUTPUT1 = difference
  identity_fp32 INPUT0 FP32 [-1,-1]         -> OUTPUT0 = INPUT0

Messages are handled as raw bytes with a hand-rolled protobuf reader and
writer: tensor bytes are memoryviews into the received message and are copied
once into the reply, so the backend's own cost stays small next to the
proxy's. The proxy sends raw_input_contents; kserve/rest-proxy, the Go peer
the benchmark compares with, sends typed contents, so the two kinds these
models take (int_contents for INT32, fp32_contents for FP32) are turned into
raw bytes too.

Prints "listening HOST:PORT" once serving; SIGTERM or SIGINT stops it.
"""

import argparse
import signal
import struct
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "inference.GRPCInferenceService"


def read_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """Yields (field number, wire type, value): ints for varints, memoryviews otherwise."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 1:
            value = buf[pos : pos + 8]
            pos += 8
        elif wire == 5:
            value = buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(number, payload):
    return varint((number << 3) | 2) + varint(len(payload)) + bytes(payload)


def bool_field(number, value):
    return varint(number << 3) + (b"\x01" if value else b"\x00")


def packed_int64(number, values):
    body = b"".join(varint(v & 0xFFFFFFFFFFFFFFFF) for v in values)
    return length_delimited(number, body)


class Tensor:
    __slots__ = ("name", "datatype", "shape", "contents")

    def __init__(self):
        self.name = ""
        self.datatype = ""
        self.shape = []
        self.contents = None


def typed_contents_as_raw(buf):
    """InferTensorContents -> raw little-endian bytes, for int_contents (2) and fp32_contents (6)."""
    ints = []
    floats = bytearray()
    for number, wire, value in fields(buf):
        if number == 2:
            if wire == 2:
                pos = 0
                while pos < len(value):
                    v, pos = read_varint(value, pos)
                    ints.append(v)
            else:
                ints.append(value)
        elif number == 6:
            floats += value
    if ints:
        return struct.pack("<%di" % len(ints), *(((v + 2**31) % 2**32) - 2**31 for v in ints))
    return bytes(floats)


def parse_tensor(buf):
    t = Tensor()
    for number, wire, value in fields(buf):
        if number == 1:
            t.name = bytes(value).decode()
        elif number == 2:
            t.datatype = bytes(value).decode()
        elif number == 3:
            if wire == 2:
                pos = 0
                while pos < len(value):
                    v, pos = read_varint(value, pos)
                    t.shape.append(v)
            else:
                t.shape.append(value)
        elif number == 5:
            t.contents = typed_contents_as_raw(value)
    return t


def parse_infer_request(data):
    buf = memoryview(data)
    model = ""
    request_id = ""
    inputs = []
    raw = []
    for number, _wire, value in fields(buf):
        if number == 1:
            model = bytes(value).decode()
        elif number == 3:
            request_id = bytes(value).decode()
        elif number == 5:
            inputs.append(parse_tensor(value))
        elif number == 7:
            raw.append(value)
    return model, request_id, inputs, raw


def output_tensor(name, datatype, shape):
    return length_delimited(
        5, length_delimited(1, name.encode()) + length_delimited(2, datatype.encode()) + packed_int64(3, shape)
    )


def infer_response(model, request_id, outputs):
    """outputs: list of (name, datatype, shape, bytes-like); one join copies the tensors."""
    parts = [length_delimited(1, model.encode()), length_delimited(2, b"1")]
    if request_id:
        parts.append(length_delimited(3, request_id.encode()))
    for name, datatype, shape, _data in outputs:
        parts.append(output_tensor(name, datatype, shape))
    for _name, _datatype, _shape, data in outputs:
        parts.append(varint((6 << 3) | 2) + varint(len(data)))
        parts.append(data)
    return b"".join(parts)


def simple(inputs, raw):
    by_name = {t.name: (t, raw[i]) for i, t in enumerate(inputs)}
    (t0, a), (_t1, b) = by_name["INPUT0"], by_name["INPUT1"]
    n = len(a) // 4
    xs = struct.unpack("<%di" % n, a)
    ys = struct.unpack("<%di" % n, b)
    wrap = lambda v: ((v + 2**31) % 2**32) - 2**31
    total = struct.pack("<%di" % n, *(wrap(x + y) for x, y in zip(xs, ys)))
    diff = struct.pack("<%di" % n, *(wrap(x - y) for x, y in zip(xs, ys)))
    return [("OUTPUT0", "INT32", t0.shape, total), ("OUTPUT1", "INT32", t0.shape, diff)]


def identity(inputs, raw):
    t = inputs[0]
    return [("OUTPUT0", t.datatype, t.shape, raw[0])]


MODELS = {"simple": simple, "identity_fp32": identity}


def model_infer(request, context):
    model, request_id, inputs, raw = parse_infer_request(request)
    if not raw and inputs and all(t.contents is not None for t in inputs):
        raw = [t.contents for t in inputs]
    handler = MODELS.get(model)
    if handler is None:
        context.abort(grpc.StatusCode.NOT_FOUND, "Request for unknown model: '%s' is not found" % model)
    if len(raw) != len(inputs):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected raw_input_contents or typed contents for every input")
    return infer_response(model, request_id, handler(inputs, raw))


def server_live(_request, _context):
    return bool_field(1, True)


def model_ready(request, _context):
    name = ""
    for number, _wire, value in fields(memoryview(request)):
        if number == 1:
            name = bytes(value).decode()
    return bool_field(1, name in MODELS)


def repository_index(_request, _context):
    entries = [
        length_delimited(
            1,
            length_delimited(1, name.encode()) + length_delimited(2, b"1") + length_delimited(3, b"READY"),
        )
        for name in MODELS
    ]
    return b"".join(entries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    handlers = {
        "ModelInfer": model_infer,
        "ServerLive": server_live,
        "ServerReady": server_live,
        "ModelReady": model_ready,
        "RepositoryIndex": repository_index,
    }
    generic = grpc.method_handlers_generic_handler(
        SERVICE, {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in handlers.items()}
    )
    # Triton lifts the message limits (MAX_GRPC_MESSAGE_SIZE = INT32_MAX).
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers),
        handlers=[generic],
        options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
    )
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    server.start()
    print("listening %s:%d" % (args.host, port), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
