/** 64-bit FNV-1a of a string's UTF-16 code units, as 16 hex digits; stable ids without node:crypto. */
export function fnv1a64Hex(text: string): string {
  // Two 32-bit lanes with different offsets keep the code browser-safe and BigInt-free.
  let h1 = 0x811c9dc5;
  let h2 = 0xcbf29ce4;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c ^ (h1 >>> 7), 0x01000193) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
