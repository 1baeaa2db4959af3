/**
 * @vlit/encoders: image preprocessing, visual-token planning and vision encoders over ONNX.
 * @packageDocumentation
 */
export * from './preprocess/resample.js';
export * from './preprocess/ops.js';
export * from './preprocess/config.js';
export * from './preprocess/pipeline.js';
export * from './preprocess/tiling.js';
export * from './planner.js';
export * from './vit/config.js';
export * from './vit/weights.js';
export * from './vit/build.js';
export * from './encoders/onnx-encoder.js';
export * from './encoders/ocr-encoder.js';
export * from './vit/vit-encoder.js';
export * from './hf/index.js';
