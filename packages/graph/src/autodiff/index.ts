/**
 * Reverse-mode autodiff over ONNX graphs and the graph surgery it needs; runtime-free.
 */
export { buildGradientModel, gradientName, type GradientModelOptions } from './gradient.js';
export { differentiableOps } from './rules.js';
export { addMaskedCrossEntropy, type GraphLike, type MaskedCrossEntropyOptions } from './loss.js';
export { editModel, promoteInitializers, pruneModel, type ModelEditor, type PromotedInitializers, type PruneModelOptions } from './editor.js';
