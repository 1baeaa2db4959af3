import {
  CompatibilityError,
  FormatError,
  InvalidArgumentError,
  UnsupportedError,
  ValidationError,
  VlitError,
  isVlitError,
  parseVlitRecord,
  type ChatMessage,
  type ChatTemplate,
  type ImageRef,
  type ProgressCallback,
  type RenderedSegment,
  type RenderOptions,
  type Tokenizer,
  type VlitErrorOptions,
  type VlitRecord,
  type VlitWarning,
} from '@vlit/core';

/** Which assistant turns are trained on; a message's own `train` flag always wins. */
export type AssistantTurnPolicy = 'all' | 'last' | 'flagged';

/** Visual tokens per image: a fixed count, or a function of the image (e.g. its size, for tiling). */
export type ImageTokenCount = number | ((image: ImageRef, imageIndex: number) => number);

/** Options of encodeConversation / encodeBatch. */
export interface EncodeOptions {
  template: ChatTemplate;
  tokenizer: Tokenizer;
  /** Tokens each image placeholder expands to (the vision encoder + connector's output count). Default 1. */
  imageTokens?: ImageTokenCount;
  /** Which assistant turns carry labels. Default `all`. */
  assistantTurns?: AssistantTurnPolicy;
  /** Longest allowed sequence, in tokens after image expansion. */
  maxLength?: number;
  /**
   * What to do above maxLength: `error` (reject), `turns` (keep the longest run of whole messages that fits),
   * `right` (cut the tail, moved back so that no image span is cut). Default `turns`.
   */
  truncation?: 'error' | 'turns' | 'right';
  /** Label of tokens that are not trained on. Default -100. */
  ignoreIndex?: number;
  /** Passed to the template (generation prompt, extra variables). */
  renderOptions?: RenderOptions;
  /**
   * A token that spans a trained and an untrained segment means the template and tokenizer disagree on a
   * boundary. `warn` (default) labels it as trained and reports a warning; `error` throws.
   */
  boundaries?: 'warn' | 'error';
  /** Allow samples without any trained token (normally an error: their loss would silently be zero). */
  allowEmptyLabels?: boolean;
}

/** Where one image's expanded tokens sit: [start, end) in inputIds. */
export interface ImageSpan {
  imageIndex: number;
  start: number;
  end: number;
}

/** Where one message's tokens sit: [start, end) in inputIds (after image expansion). */
export interface MessageSpan {
  messageIndex: number;
  start: number;
  end: number;
}

/** A token whose characters fall on both sides of a trained/untrained boundary. */
export interface BoundaryIssue {
  /** Token position in inputIds. */
  position: number;
  tokenId: number;
  /** The token's text, decoded. */
  token: string;
  /** The segment texts it touches, in order. */
  segments: string[];
}

/** One conversation encoded for training. */
export interface EncodedSample {
  id: string;
  inputIds: number[];
  /** Token id where trained, `ignoreIndex` elsewhere (prompts, template glue, image tokens). */
  labels: number[];
  attentionMask: number[];
  imageSpans: ImageSpan[];
  messageSpans: MessageSpan[];
  /** The rendered text (image placeholders not yet expanded). */
  text: string;
  /** The rendered segments the labels were derived from. */
  segments: RenderedSegment[];
  truncated: boolean;
  boundaryIssues: BoundaryIssue[];
  warnings: VlitWarning[];
}

/** One record that could not be encoded, and why. */
export interface EncodeReject {
  /** Record id when readable, else its index in the input. */
  id: string | number;
  index: number;
  reason: string;
  /** The failing field (e.g. `messages.2.role`, `images`, `chat_template`). */
  field: string;
  /** The error code (`VLIT_VALIDATION`, `VLIT_FORMAT`, ...). */
  code: string;
}

/** Result of encodeBatch: every input is either encoded or rejected (read = encoded + rejected). */
export interface EncodeBatchResult {
  encoded: EncodedSample[];
  rejects: EncodeReject[];
  counts: { read: number; encoded: number; rejected: number };
}

type ErrorCtor = new (message: string, options?: VlitErrorOptions) => VlitError;

/** The same error with the record named, so batch rejects and thrown errors say which record failed. */
export function withRecord(err: unknown, record: string | number): unknown {
  if (!isVlitError(err) || err.details.record !== undefined) return err;
  const reason = typeof err.details.reason === 'string' ? err.details.reason : err.message;
  const Ctor = err.constructor as ErrorCtor;
  return new Ctor(reason, { cause: err.cause ?? err, details: { ...err.details, record } });
}

function checkPositiveInt(value: number, field: string, record: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${field} must be a positive integer, got ${String(value)}`, { details: { record, field } });
  }
}

/** Whether each message's assistant text is trained on, per policy and per-message flags. */
export function trainedMessages(messages: readonly ChatMessage[], policy: AssistantTurnPolicy): boolean[] {
  let last = -1;
  messages.forEach((m, i) => {
    if (m.role === 'assistant') last = i;
  });
  return messages.map((m, i) => {
    if (m.role !== 'assistant') return false;
    if (m.train !== undefined) return m.train;
    if (policy === 'all') return true;
    if (policy === 'last') return i === last;
    return false;
  });
}

interface Tokenized {
  ids: number[];
  /** Per token: indices of the segments it touches (first..last). */
  firstSeg: number[];
  lastSeg: number[];
  segmentwise: boolean;
}

function tokenizeSegments(tokenizer: Tokenizer, segments: RenderedSegment[], text: string): Tokenized {
  const starts: number[] = [];
  let at = 0;
  for (const s of segments) {
    starts.push(at);
    at += s.text.length;
  }
  const enc = tokenizer.encode(text, { addSpecialTokens: false });
  if (enc.offsets && enc.offsets.length === enc.ids.length) {
    const firstSeg: number[] = new Array(enc.ids.length);
    const lastSeg: number[] = new Array(enc.ids.length);
    let seg = 0;
    for (let t = 0; t < enc.ids.length; t++) {
      const [s, e] = enc.offsets[t];
      while (seg + 1 < segments.length && starts[seg + 1] <= s) seg++;
      let last = seg;
      while (last + 1 < segments.length && starts[last + 1] < e) last++;
      firstSeg[t] = seg;
      lastSeg[t] = last;
    }
    return { ids: enc.ids, firstSeg, lastSeg, segmentwise: false };
  }
  // Without offsets, segments are tokenized one by one: exact boundaries, but maybe not the ids inference sees.
  const ids: number[] = [];
  const firstSeg: number[] = [];
  segments.forEach((s, i) => {
    for (const id of tokenizer.encode(s.text, { addSpecialTokens: false }).ids) {
      ids.push(id);
      firstSeg.push(i);
    }
  });
  return { ids, firstSeg, lastSeg: firstSeg.slice(), segmentwise: true };
}

/** Validate and encode one record into input ids, labels, attention mask and image spans. */
export function encodeConversation(record: unknown, options: EncodeOptions, index?: number): EncodedSample {
  const parsed: VlitRecord = parseVlitRecord(record, index !== undefined ? { record: index } : {});
  try {
    return encodeParsed(parsed, options);
  } catch (err) {
    throw withRecord(err, parsed.id);
  }
}

function encodeParsed(record: VlitRecord, options: EncodeOptions): EncodedSample {
  const { template, tokenizer } = options;
  const ignore = options.ignoreIndex ?? -100;
  const id = record.id;
  if (!template.renderSegments) {
    throw new UnsupportedError(`chat template ${template.name} cannot render segments, so label masks cannot be derived from offsets`, {
      details: { record: id, field: 'template' },
    });
  }
  const segments = template.renderSegments(record.messages, options.renderOptions);
  const text = segments.map((s) => s.text).join('');
  const trained = trainedMessages(record.messages, options.assistantTurns ?? 'all');
  const segTrained = segments.map((s) => s.trainable && s.messageIndex >= 0 && trained[s.messageIndex]);

  const tok = tokenizeSegments(tokenizer, segments, text);
  const warnings: VlitWarning[] = [];
  if (tok.segmentwise) {
    warnings.push({
      code: 'VLIT_W_SEGMENTWISE_TOKENIZATION',
      message: 'the tokenizer gave no offsets, so segments were tokenized one by one; ids may differ from inference tokenization',
      details: { record: id },
    });
  }

  const imageTokenId = tokenizer.tokenToId(template.imageToken);
  const imageCount = record.images.length;
  if (imageCount > 0 && imageTokenId === undefined) {
    throw new CompatibilityError(`image token '${template.imageToken}' of template ${template.name} is not in the tokenizer's vocabulary`, {
      details: { record: id, field: 'images', left: template.name, right: tokenizer.id },
    });
  }
  // Expanded length first (each image token becomes `count` tokens), so the output arrays are sized once.
  const ids = tok.ids;
  let found = 0;
  if (imageTokenId !== undefined) for (let t = 0; t < ids.length; t++) if (ids[t] === imageTokenId) found++;
  if (found !== imageCount) {
    throw new FormatError(
      `${imageCount} image(s) but ${found} '${template.imageToken}' token(s) after tokenization (the image token must be a single special token, and must not appear in message text)`,
      { details: { record: id, field: 'images', reason: `${imageCount} image(s) but ${found} image token(s) after tokenization` } },
    );
  }
  const counts: number[] = new Array<number>(imageCount);
  let total = ids.length;
  for (let k = 0; k < imageCount; k++) {
    const count = typeof options.imageTokens === 'function' ? options.imageTokens(record.images[k], k) : (options.imageTokens ?? 1);
    checkPositiveInt(count, 'imageTokens', id);
    counts[k] = count;
    total += count - 1;
  }

  const inputIds: number[] = new Array<number>(total);
  const labels: number[] = new Array<number>(total);
  const imageSpans: ImageSpan[] = [];
  const boundaryIssues: BoundaryIssue[] = [];
  // Message spans: [first token, last token + 1) of each message, in order of first appearance.
  const messageSpans: MessageSpan[] = [];
  const spanOf: Array<MessageSpan | undefined> = new Array<MessageSpan | undefined>(record.messages.length);
  const mark = (m: number, start: number, end: number): void => {
    if (m < 0) return;
    const span = spanOf[m];
    if (span) span.end = end;
    else {
      const created = { messageIndex: m, start, end };
      spanOf[m] = created;
      messageSpans.push(created);
    }
  };
  let at = 0;
  let imageIndex = 0;
  for (let t = 0; t < ids.length; t++) {
    const tid = ids[t];
    const first = tok.firstSeg[t];
    const last = tok.lastSeg[t];
    if (tid === imageTokenId) {
      const count = counts[imageIndex];
      imageSpans.push({ imageIndex, start: at, end: at + count });
      for (let k = 0; k < count; k++) {
        inputIds[at + k] = tid;
        labels[at + k] = ignore;
      }
      mark(segments[first].messageIndex, at, at + count);
      at += count;
      imageIndex++;
      continue;
    }
    let trainedSeg = -1;
    let mixed = false;
    for (let s = first; s <= last; s++) {
      if (segTrained[s] && trainedSeg < 0) trainedSeg = s;
      if (segTrained[s] !== segTrained[first]) mixed = true;
    }
    if (mixed) {
      boundaryIssues.push({
        position: at,
        tokenId: tid,
        token: tokenizer.decode([tid]),
        segments: segments.slice(first, last + 1).map((s) => s.text),
      });
    }
    inputIds[at] = tid;
    labels[at] = trainedSeg >= 0 ? tid : ignore;
    mark(segments[trainedSeg >= 0 ? trainedSeg : first].messageIndex, at, at + 1);
    at++;
  }
  if (boundaryIssues.length) {
    const list = boundaryIssues.map((b) => JSON.stringify(b.token)).join(', ');
    const reason = `token(s) ${list} span a trained and an untrained segment: template ${template.name} and tokenizer ${tokenizer.id} disagree on a turn boundary`;
    if (options.boundaries === 'error') throw new FormatError(reason, { details: { record: id, field: 'messages', reason, tokens: boundaryIssues } });
    warnings.push({ code: 'VLIT_W_TOKEN_STRADDLES_SEGMENTS', message: reason, details: { record: id, tokens: boundaryIssues } });
  }

  let sample: EncodedSample = {
    id,
    inputIds,
    labels,
    attentionMask: new Array<number>(total).fill(1),
    imageSpans,
    messageSpans,
    text,
    segments,
    truncated: false,
    boundaryIssues,
    warnings,
  };
  if (options.maxLength !== undefined) {
    checkPositiveInt(options.maxLength, 'maxLength', id);
    if (inputIds.length > options.maxLength) sample = truncateSample(sample, options.maxLength, options.truncation ?? 'turns', ignore);
  }
  if (!options.allowEmptyLabels && !sample.labels.some((l) => l !== ignore)) {
    const reason = `no trained tokens: every label is masked (no assistant turn selected by policy '${options.assistantTurns ?? 'all'}'${sample.truncated ? ', or truncation removed them' : ''})`;
    throw new ValidationError(reason, { details: { record: id, field: 'messages', reason } });
  }
  return sample;
}

/** Cut a sample to maxLength without ever cutting an image span in half. */
export function truncateSample(sample: EncodedSample, maxLength: number, policy: 'error' | 'turns' | 'right', ignoreIndex = -100): EncodedSample {
  const n = sample.inputIds.length;
  if (n <= maxLength) return sample;
  if (policy === 'error') {
    const reason = `${n} tokens exceed maxLength ${maxLength}`;
    throw new ValidationError(reason, { details: { record: sample.id, field: 'messages', reason } });
  }
  let cut: number;
  if (policy === 'turns') {
    cut = 0;
    for (const span of sample.messageSpans) if (span.end <= maxLength) cut = Math.max(cut, span.end);
    // Stop after the last whole assistant message, so the kept text ends at an answer.
    const ends = sample.messageSpans.filter((s) => s.end <= cut && sample.labels.slice(s.start, s.end).some((l) => l !== ignoreIndex));
    if (ends.length) cut = Math.max(...ends.map((s) => s.end));
  } else {
    cut = maxLength;
    for (const s of sample.imageSpans) if (s.start < cut && s.end > cut) cut = s.start;
  }
  return {
    ...sample,
    inputIds: sample.inputIds.slice(0, cut),
    labels: sample.labels.slice(0, cut),
    attentionMask: sample.attentionMask.slice(0, cut),
    imageSpans: sample.imageSpans.filter((s) => s.end <= cut),
    messageSpans: sample.messageSpans.filter((s) => s.start < cut).map((s) => ({ ...s, end: Math.min(s.end, cut) })),
    boundaryIssues: sample.boundaryIssues.filter((b) => b.position < cut),
    truncated: true,
  };
}

/** Options of encodeBatch. */
export interface EncodeBatchOptions extends EncodeOptions {
  /** Progress, every `progressEvery` records (default 1000) and at the end. */
  onProgress?: ProgressCallback;
  progressEvery?: number;
}

function recordIdOf(value: unknown, index: number): string | number {
  if (value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string') return (value as { id: string }).id;
  return index;
}

/** Encode many records; a record that fails goes to `rejects` with its reason and field, and the batch goes on. */
export function encodeBatch(records: Iterable<unknown>, options: EncodeBatchOptions): EncodeBatchResult {
  const encoded: EncodedSample[] = [];
  const rejects: EncodeReject[] = [];
  const every = options.progressEvery ?? 1000;
  let index = 0;
  for (const record of records) {
    try {
      encoded.push(encodeConversation(record, options, index));
    } catch (err) {
      if (!isVlitError(err)) throw err; // a bug, not bad input: never hide it in rejects
      const reason = typeof err.details.reason === 'string' ? err.details.reason : err.message;
      rejects.push({
        id: err.details.record ?? recordIdOf(record, index),
        index,
        reason,
        field: err.details.field ?? '(record)',
        code: err.code,
      });
    }
    index++;
    if (options.onProgress && index % every === 0) options.onProgress({ stage: 'encode', done: index });
  }
  options.onProgress?.({ stage: 'encode', done: index, total: index });
  return { encoded, rejects, counts: { read: index, encoded: encoded.length, rejected: rejects.length } };
}
