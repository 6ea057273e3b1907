/**
 * Triton's tensor datatypes and the facts the codecs need about each:
 * element width in raw bytes (0 = variable, BYTES) and whether JSON may carry it.
 * Raw layout is row-major, little-endian, unpadded; BOOL is one byte.
 */
export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BF16',
  'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

const ELEMENT_BYTES: Record<Datatype, number> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BF16: 2,
  BYTES: 0,
};

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);

export function isDatatype(value: string): value is Datatype {
  return DATATYPE_SET.has(value);
}

/** Bytes per element in raw form; 0 for BYTES, whose elements are length-prefixed. */
export function elementBytes(datatype: Datatype): number {
  return ELEMENT_BYTES[datatype];
}

/** FP16 and BF16 have no JSON or typed-contents form: they travel only as raw bytes. */
export function isRawOnly(datatype: Datatype): boolean {
  return datatype === 'FP16' || datatype === 'BF16';
}

/** Number of elements a shape describes (1 for a scalar shape []). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
