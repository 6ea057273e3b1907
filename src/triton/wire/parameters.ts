import type { ParameterValue, Parameters } from '../../protocol';
import { bitsFromBigInt, int64FromBits, isInt64, isUint64, uint64FromBits } from './long-bits';
import { ProtoReader, WIRE_FIXED64, WIRE_LENGTH_DELIMITED, WIRE_VARINT } from './proto-reader';
import { ProtoWriter, int64Size, stringSize, varint32Size, varint64Size } from './proto-writer';
import { WireFormatError, quoteName } from './wire-format-error';

/**
 * `map<string, InferParameter>`: on the wire a repeated entry message with
 * key = 1 and value = 2, where InferParameter is a oneof of bool_param = 1,
 * int64_param = 2, string_param = 3, double_param = 4, uint64_param = 5.
 */

const ENTRY_KEY = (1 << 3) | WIRE_LENGTH_DELIMITED;
const ENTRY_VALUE = (2 << 3) | WIRE_LENGTH_DELIMITED;
const BOOL_PARAM = (1 << 3) | WIRE_VARINT;
const INT64_PARAM = (2 << 3) | WIRE_VARINT;
const STRING_PARAM = (3 << 3) | WIRE_LENGTH_DELIMITED;
const DOUBLE_PARAM = (4 << 3) | WIRE_FIXED64;
const UINT64_PARAM = (5 << 3) | WIRE_VARINT;

/** Size of all entries of a parameters map, each including its field tag (one byte). */
export function parametersSize(params: Parameters, lengths: number[]): number {
  let size = 0;
  for (const key of Object.keys(params)) {
    const entrySlot = lengths.length;
    lengths.push(0);
    const keySize = 1 + stringSize(key, lengths);
    const valueSlot = lengths.length;
    lengths.push(0);
    const valueSize = parameterSize(key, params[key], lengths);
    lengths[valueSlot] = valueSize;
    const entry = keySize + 1 + varint32Size(valueSize) + valueSize;
    lengths[entrySlot] = entry;
    size += 1 + varint32Size(entry) + entry;
  }
  return size;
}

function parameterSize(key: string, value: ParameterValue, lengths: number[]): number {
  switch (typeof value) {
    case 'boolean':
      return 2;
    case 'string':
      return 1 + stringSize(value, lengths);
    case 'number':
      return Number.isSafeInteger(value) ? 1 + int64Size(value) : 9;
    case 'bigint': {
      checkBigIntRange(key, value);
      const { lo, hi } = bitsFromBigInt(value);
      return 1 + varint64Size(lo, hi);
    }
    default:
      throw new WireFormatError(`parameter ${quoteName(key)} has unsupported type ${typeof value}`);
  }
}

function checkBigIntRange(key: string, value: bigint): void {
  if (!isInt64(value) && !isUint64(value)) {
    throw new WireFormatError(
      `parameter ${quoteName(key)} (${value}) is outside the int64 and uint64 ranges`,
    );
  }
}

/** Writes every entry as field `fieldTag`; must visit values exactly as parametersSize did. */
export function writeParameters(w: ProtoWriter, fieldTag: number, params: Parameters): void {
  for (const key of Object.keys(params)) {
    const value = params[key];
    w.uint32(fieldTag);
    w.lengthPrefix();
    w.uint32(ENTRY_KEY);
    w.string(key);
    w.uint32(ENTRY_VALUE);
    w.lengthPrefix();
    writeParameter(w, value);
  }
}

function writeParameter(w: ProtoWriter, value: ParameterValue): void {
  switch (typeof value) {
    case 'boolean':
      w.uint32(BOOL_PARAM);
      w.uint32(value ? 1 : 0);
      return;
    case 'string':
      w.uint32(STRING_PARAM);
      w.string(value);
      return;
    case 'number':
      if (Number.isSafeInteger(value)) {
        w.uint32(INT64_PARAM);
        w.int64(value);
      } else {
        w.uint32(DOUBLE_PARAM);
        w.double(value);
      }
      return;
    default: {
      const { lo, hi } = bitsFromBigInt(value);
      w.uint32(isInt64(value) ? INT64_PARAM : UINT64_PARAM);
      w.varint64(lo, hi);
    }
  }
}

/**
 * Decodes one map entry into `params`. Repeated keys keep the last value and
 * a repeated value field is merged (the last oneof member set wins), as
 * protobuf specifies; an entry whose InferParameter sets nothing is dropped
 * because no ParameterValue stands for "unset".
 */
export function decodeParameterEntry(r: ProtoReader, params: Parameters): void {
  const outer = r.enter();
  let key = '';
  let value: ParameterValue | undefined;
  while (r.pos < r.limit) {
    const tag = r.tag();
    if (tag === ENTRY_KEY) key = r.string();
    else if (tag === ENTRY_VALUE) value = decodeParameter(r, value);
    else r.skip(tag);
  }
  r.leave(outer);
  if (value === undefined) return;
  if (key === '__proto__') {
    // Plain assignment would set the object's prototype instead of a key.
    Object.defineProperty(params, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    params[key] = value;
  }
}

function decodeParameter(
  r: ProtoReader,
  previous: ParameterValue | undefined,
): ParameterValue | undefined {
  const outer = r.enter();
  let value = previous;
  while (r.pos < r.limit) {
    const tag = r.tag();
    switch (tag) {
      case BOOL_PARAM:
        value = r.bool();
        break;
      case INT64_PARAM:
        r.varint64();
        value = int64FromBits(r.lo, r.hi);
        break;
      case STRING_PARAM:
        value = r.string();
        break;
      case DOUBLE_PARAM:
        value = r.double();
        break;
      case UINT64_PARAM:
        r.varint64();
        value = uint64FromBits(r.lo, r.hi);
        break;
      default:
        r.skip(tag);
    }
  }
  r.leave(outer);
  return value;
}
