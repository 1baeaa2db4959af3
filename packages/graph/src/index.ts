/**
 * @vlit/graph: build, load, inspect, edit, compose and shape-infer ONNX graphs in TypeScript.
 * File I/O lives at `@vlit/graph/node`.
 * @packageDocumentation
 */
export {
  onnx,
  elementTypeFromOnnx,
  elementTypeToOnnx,
  isCoreDType,
  tensorToProto,
  protoToTensor,
  type OnnxModel,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
  type AttributeProto,
  type ElementType,
  type ExtraElementType,
  type Dim,
} from './proto.js';
export {
  floatAttr,
  floatsAttr,
  intAttr,
  intsAttr,
  type AttributeValue,
  type DecodedAttribute,
  type TypedAttribute,
} from './attributes.js';
export {
  createGraph,
  type Attributes,
  type CreateGraphOptions,
  type GraphBuilder,
  type NodeNaming,
  type Operand,
  type OpOptions,
  type Value,
  type ValueRef,
} from './builder.js';
export { cloneModel, encodeModel, decodeModel, validateModel, type DecodeModelOptions } from './model.js';
export {
  listInputs,
  listOutputs,
  listNodes,
  listInitializers,
  getInitializer,
  exposeOutput,
  type ValueSignature,
  type NodeSummary,
  type InitializerSummary,
  type ExposeOutputOptions,
} from './inspect.js';
export { inferShapes, inferGraphTypes, type InferShapesOptions } from './infer.js';
export { mergeModels, renameGraph, type MergeModelsOptions, type RenameGraphOptions } from './merge.js';
export { broadcastShapes, getShapeRule, supportedOps, formatDims, type ShapeRule, type RuleContext, type TypeInfo } from './shape-rules/index.js';
export { defaultOpset, makeValueInfo, typeInfoFromValueInfo } from './value-info.js';
export {
  buildGradientModel,
  gradientName,
  differentiableOps,
  addMaskedCrossEntropy,
  editModel,
  promoteInitializers,
  pruneModel,
  type GradientModelOptions,
  type GraphLike,
  type MaskedCrossEntropyOptions,
  type ModelEditor,
  type PromotedInitializers,
  type PruneModelOptions,
} from './autodiff/index.js';
