/** Fast deterministic filler for multi-MiB test tensors (fast-check would take seconds). */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed | 0 || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, i);
  }
  for (; i < length; i++) out[i] = i & 0xff;
  return out;
}
