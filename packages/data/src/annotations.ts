import { z } from 'zod';

/** A box in COCO's convention: [x, y, width, height] in pixels from the top-left corner. */
export const boxSchema = z.tuple([z.number(), z.number(), z.number().nonnegative(), z.number().nonnegative()]);
export type Box = z.infer<typeof boxSchema>;

/** One annotated object instance. */
export const objectAnnotationSchema = z.object({
  id: z.union([z.string(), z.number()]).optional(),
  /** Category name, e.g. `dog`. */
  category: z.string().min(1),
  bbox: boxSchema,
  /** Attribute words known for this instance, e.g. colours (`brown`). */
  attributes: z.array(z.string()).optional(),
});
export type ObjectAnnotation = z.infer<typeof objectAnnotationSchema>;

/** A described region. */
export const regionAnnotationSchema = z.object({ bbox: boxSchema, description: z.string().min(1) });
export type RegionAnnotation = z.infer<typeof regionAnnotationSchema>;

/** A question with its human answers (VQAv2 gives ten). */
export const vqaAnnotationSchema = z.object({
  question: z.string().min(1),
  answers: z.array(z.string()).min(1),
  answerType: z.string().optional(),
});
export type VqaAnnotation = z.infer<typeof vqaAnnotationSchema>;

/** A piece of text visible in the image. */
export const ocrAnnotationSchema = z.object({ text: z.string().min(1), bbox: boxSchema.optional() });
export type OcrAnnotation = z.infer<typeof ocrAnnotationSchema>;

/**
 * Everything known about one image, gathered from COCO captions/instances, region descriptions,
 * VQA pairs and OCR tokens. The common input of annotation adaption, Self-Instruct prompting and
 * the answer–annotation consistency checks of quality control.
 */
export const imageAnnotationsSchema = z.object({
  imageId: z.string().min(1),
  /** Image path relative to the dataset root. */
  file: z.string().min(1),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  captions: z.array(z.string()).default([]),
  objects: z.array(objectAnnotationSchema).default([]),
  regions: z.array(regionAnnotationSchema).default([]),
  vqa: z.array(vqaAnnotationSchema).default([]),
  ocr: z.array(ocrAnnotationSchema).default([]),
});
export type ImageAnnotations = z.infer<typeof imageAnnotationsSchema>;
export type ImageAnnotationsInput = z.input<typeof imageAnnotationsSchema>;
