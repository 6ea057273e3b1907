/**
 * 64-bit integers travel as two unsigned 32-bit halves (lo, hi) so the common
 * case never touches BigInt; values outside Number's safe range become bigint.
 */

const TWO_32 = 4294967296;
// hi halves at or below this keep an unsigned value within 2^53 - 1.
const MAX_SAFE_HI = 0x1fffff;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

export function uint64FromBits(lo: number, hi: number): number | bigint {
  if (hi <= MAX_SAFE_HI) return hi * TWO_32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

export function int64FromBits(lo: number, hi: number): number | bigint {
  if (hi <= MAX_SAFE_HI) return hi * TWO_32 + lo;
  const signedHi = hi | 0;
  // Negative values down to -(2^53 - 1) are exact as doubles.
  if (signedHi < 0 && (signedHi > -MAX_SAFE_HI - 1 || (signedHi === -MAX_SAFE_HI - 1 && lo > 0))) {
    return signedHi * TWO_32 + lo;
  }
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

export function bitsFromBigInt(value: bigint): { lo: number; hi: number } {
  const bits = BigInt.asUintN(64, value);
  return { lo: Number(bits & 0xffffffffn), hi: Number(bits >> 32n) };
}

export function isInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}

export function isUint64(value: bigint): boolean {
  return value >= 0n && value <= UINT64_MAX;
}
