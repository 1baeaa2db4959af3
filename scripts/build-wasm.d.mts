/** Types of build-wasm.mjs, for the test that the committed module matches its source. */
export function assembleResampleWasm(): Promise<Uint8Array>;
export function generatedSource(bytes: Uint8Array): string;
export const generatedPath: string;
