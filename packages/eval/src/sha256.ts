// Base64 without Buffer (browser-safe). Hashing and canonical JSON live in @vlit/core (sha256Hex,
// canonicalJson); they are re-exported here under eval's internal names only.
export { canonicalJson as stableStringify, sha256Hex } from '@vlit/core';

/** Base64 of bytes, without Buffer (browser-safe). */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  return btoa(binary);
}

/** Bytes from base64 (standard alphabet; whitespace ignored), without Buffer. */
export function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text.replace(/\s+/g, ''));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
