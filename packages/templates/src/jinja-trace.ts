import { Environment, Interpreter, type Template } from '@huggingface/jinja';

/**
 * Content tracing for Jinja chat templates: one render of a conversation shape in which every message's
 * content is a traced string, recording every question the template asks about a content (is it
 * non-empty, does it start with / end with / contain / equal a constant). A conversation of the same shape
 * whose contents give the same answers runs through the template exactly as the traced render did, so
 * its rendering is the traced rendering with the contents substituted: no render is needed for it.
 *
 * Soundness rests on a whitelist: a traced value (a content, or a string concatenated from one) may only
 * be emitted, assigned, concatenated, tested for its type, used as a condition, asked one of the
 * questions above with a constant, or stripped (`strip`/`lstrip`/`rstrip`/`|trim`) where stripping changes
 * nothing (the guard records that it changes nothing). A message object or list holding contents may only be indexed,
 * iterated, counted or have fields read. Anything else (a filter on content, slicing it, passing it to a
 * function, printing a message object, macros and block assignments whose output could capture content)
 * aborts the trace, and the caller renders every conversation as before.
 */

/** One observation of a traced string: `op(text, arg)` gave `result`. */
export interface ContentGuard {
  /** The observed string: literal text and content indices, concatenated. */
  parts: ReadonlyArray<string | number>;
  op: 'bool' | 'eq' | 'includes' | 'startswith' | 'endswith' | 'strip' | 'lstrip' | 'rstrip';
  arg: string;
  result: boolean;
}

/** What a traced render found: the rendering (with the probe contents) and the guards. */
export interface ContentTrace {
  text: string;
  guards: ContentGuard[];
}

interface RuntimeValueLike {
  type: string;
  value: unknown;
  __bool__(): RuntimeValueLike;
}

interface NodeLike {
  type: string;
  [key: string]: unknown;
}

type Evaluator = (node: NodeLike | undefined, env: unknown) => RuntimeValueLike;

interface InterpreterInternals {
  evaluate: Evaluator;
  evaluateBinaryExpression: Evaluator;
  evaluateMemberExpression: Evaluator;
  evaluateFilterExpression: Evaluator;
  run(program: unknown): RuntimeValueLike;
}

interface EnvironmentInternals {
  set(name: string, value: unknown): void;
  lookupVariable(name: string): RuntimeValueLike;
}

type ValueCtor = new (value: unknown) => RuntimeValueLike;

/** The runtime value classes of @huggingface/jinja (not exported), taken from values it creates. */
function runtimeClasses(): { StringValue: ValueCtor; BooleanValue: ValueCtor; FunctionValue: ValueCtor } {
  const env = new Environment() as unknown as EnvironmentInternals;
  let n = 0;
  const of = (value: unknown): ValueCtor => {
    const name = `v${n++}`;
    env.set(name, value);
    return env.lookupVariable(name).constructor as ValueCtor;
  };
  return { StringValue: of(''), BooleanValue: of(true), FunctionValue: of(() => null) };
}

let classes: ReturnType<typeof runtimeClasses> | undefined;

class TraceAbort {
  constructor(readonly reason: string) {}
}

/** Template constructs whose output can capture content as an untraced string. */
const UNTRACEABLE_NODES = new Set(['Macro', 'CallStatement', 'FilterStatement']);
/** Tests that look only at a value's type. */
const TYPE_TESTS = new Set([
  'string',
  'defined',
  'undefined',
  'none',
  'mapping',
  'number',
  'integer',
  'float',
  'boolean',
  'callable',
  'true',
  'false',
  'iterable',
  'sequence',
]);
/** Filters on a message list that do not look inside the messages. */
const CONTAINER_FILTERS = new Set(['length', 'count', 'first', 'last', 'reverse', 'list']);

function untraceable(node: unknown, depth = 0): boolean {
  if (!node || typeof node !== 'object' || depth > 200) return depth > 200;
  if (Array.isArray(node)) return node.some((n) => untraceable(n, depth + 1));
  const n = node as NodeLike;
  if (UNTRACEABLE_NODES.has(n.type)) return true;
  if (n.type === 'Set' && !n.value) return true;
  return Object.values(n).some((v) => typeof v === 'object' && untraceable(v, depth + 1));
}

/**
 * Render `messages` (contents given as probe strings) once with every content traced; null when the
 * template does something with a content that tracing cannot account for.
 */
export function traceContentGuards(
  template: Template,
  variables: Record<string, unknown>,
  messages: ReadonlyArray<{ role: string; content: string }>,
): ContentTrace | null {
  if (untraceable(template.parsed)) return null;
  try {
    return trace(template, variables, messages);
  } catch {
    return null;
  }
}

function trace(template: Template, variables: Record<string, unknown>, messages: ReadonlyArray<{ role: string; content: string }>): ContentTrace {
  classes ??= runtimeClasses();
  const { StringValue, BooleanValue, FunctionValue } = classes;
  const guards: ContentGuard[] = [];

  class Traced extends StringValue {
    constructor(
      value: string,
      readonly parts: ReadonlyArray<string | number>,
    ) {
      super(value);
    }
    override __bool__(): RuntimeValueLike {
      const result = (this.value as string).length > 0;
      guards.push({ parts: this.parts, op: 'bool', arg: '', result });
      return new BooleanValue(result);
    }
  }
  const isTraced = (v: unknown): v is Traced => v instanceof Traced;
  const holdsTraced = (v: RuntimeValueLike, depth = 0): boolean => {
    if (depth > 8) return true;
    if (isTraced(v)) return true;
    if (v.value instanceof Map) {
      for (const x of (v.value as Map<string, RuntimeValueLike>).values()) if (x && typeof x === 'object' && holdsTraced(x, depth + 1)) return true;
    } else if (Array.isArray(v.value)) {
      for (const x of v.value as RuntimeValueLike[]) if (x && typeof x === 'object' && holdsTraced(x, depth + 1)) return true;
    }
    return false;
  };
  const partsOf = (v: RuntimeValueLike): Array<string | number> => (isTraced(v) ? [...v.parts] : [String(v.value)]);

  const env = new Environment() as unknown as EnvironmentInternals;
  for (const [k, v] of [
    ['false', false],
    ['true', true],
    ['none', null],
    ['True', true],
    ['False', false],
    ['None', null],
  ] as const)
    env.set(k, v);
  env.set('raise_exception', (message: unknown) => {
    throw new TraceAbort(`raise_exception: ${String(message)}`);
  });
  for (const [k, v] of Object.entries(variables)) env.set(k, v);
  env.set('messages', messages);
  const list = env.lookupVariable('messages').value as RuntimeValueLike[];
  list.forEach((m, i) => (m.value as Map<string, RuntimeValueLike>).set('content', new Traced(messages[i].content, [i])));

  const interp = new Interpreter(env as unknown as Environment) as unknown as InterpreterInternals;
  const base = {
    evaluate: interp.evaluate.bind(interp),
    binary: interp.evaluateBinaryExpression.bind(interp),
    member: interp.evaluateMemberExpression.bind(interp),
    filter: interp.evaluateFilterExpression.bind(interp),
  };
  const stack: NodeLike[] = [];
  const pre = new Map<unknown, RuntimeValueLike>();

  /** Whether `parent` may receive a traced string or a container of traced strings as its child `child`. */
  const check = (parent: NodeLike | undefined, child: NodeLike, value: RuntimeValueLike): void => {
    if (!holdsTraced(value)) return;
    const text = isTraced(value);
    if (!parent || parent.type === 'Program') {
      if (text) return;
    } else {
      switch (parent.type) {
        case 'If':
          if (text || child === parent.test) return;
          break;
        case 'For':
          if (child === parent.iterable ? !text : text) return;
          break;
        case 'Set':
          if (child === parent.value) return;
          break;
        case 'BinaryExpression':
          return; // handled by the binary override
        case 'MemberExpression':
          if (child === parent.object) return; // handled by the member override
          break;
        case 'TestExpression': {
          const test = parent.test as { value?: unknown } | undefined;
          if (typeof test?.value === 'string' && TYPE_TESTS.has(test.value)) return;
          break;
        }
        case 'UnaryExpression':
          if ((parent.operator as { value?: unknown } | undefined)?.value === 'not') return;
          break;
        case 'Ternary':
          return;
        case 'FilterExpression': {
          const filter = parent.filter as NodeLike | undefined;
          if (filter?.type === 'Identifier' && typeof filter.value === 'string' && (text ? filter.value === 'trim' : CONTAINER_FILTERS.has(filter.value)))
            return;
          break;
        }
      }
    }
    throw new TraceAbort(`content reaches ${parent?.type ?? 'output'} in an untraced way`);
  };

  interp.evaluate = (node, e) => {
    if (node && pre.has(node)) {
      const v = pre.get(node)!;
      pre.delete(node);
      return v;
    }
    const parent = stack[stack.length - 1];
    if (node) stack.push(node);
    let v: RuntimeValueLike;
    try {
      v = base.evaluate(node, e);
    } finally {
      if (node) stack.pop();
    }
    if (node) check(parent, node, v);
    return v;
  };

  interp.evaluateBinaryExpression = (node, e) => {
    const op = (node!.operator as { value: string }).value;
    const left = interp.evaluate(node!.left as NodeLike, e);
    if (op === 'and' || op === 'or') {
      if (holdsTraced(left) && !isTraced(left)) throw new TraceAbort(`'${op}' on a message object`);
      const truthy = left.__bool__().value === true;
      if (op === 'and' ? !truthy : truthy) return left;
      return interp.evaluate(node!.right as NodeLike, e);
    }
    const right = interp.evaluate(node!.right as NodeLike, e);
    const lt = isTraced(left);
    const rt = isTraced(right);
    if ((holdsTraced(left) && !lt) || (holdsTraced(right) && !rt)) throw new TraceAbort(`'${op}' on a message object`);
    if (!lt && !rt) {
      pre.set(node!.left, left);
      pre.set(node!.right, right);
      return base.binary(node, e);
    }
    const strings = left instanceof StringValue && right instanceof StringValue;
    if ((op === '+' || op === '~') && strings) {
      return new Traced(String(left.value) + String(right.value), [...partsOf(left), ...partsOf(right)]);
    }
    const observe = (traced: Traced, other: RuntimeValueLike, guardOp: ContentGuard['op'], negate: boolean): RuntimeValueLike => {
      if (isTraced(other) || !(other instanceof StringValue)) throw new TraceAbort(`'${op}' between content and a non-constant`);
      const arg = String(other.value);
      const t = traced.value as string;
      const result = guardOp === 'eq' ? t === arg : t.includes(arg);
      guards.push({ parts: traced.parts, op: guardOp, arg, result });
      return new BooleanValue(negate ? !result : result);
    };
    if (op === '==' || op === '!=') return observe((lt ? left : right) as Traced, lt ? right : left, 'eq', op === '!=');
    if ((op === 'in' || op === 'not in') && rt && !lt) return observe(right as Traced, left, 'includes', op === 'not in');
    throw new TraceAbort(`'${op}' on content`);
  };

  interp.evaluateFilterExpression = (node, e) => {
    const operand = interp.evaluate(node!.operand as NodeLike, e);
    if (isTraced(operand)) {
      // Only `|trim` reaches here (see check); traced only where it changes nothing.
      if (!stripIsNoop(operand.value as string, 'strip', '')) throw new TraceAbort('content|trim changes the probe');
      guards.push({ parts: operand.parts, op: 'strip', arg: '', result: true });
      return operand;
    }
    pre.set(node!.operand, operand);
    return base.filter(node, e);
  };

  interp.evaluateMemberExpression = (node, e) => {
    const object = interp.evaluate(node!.object as NodeLike, e);
    if (isTraced(object)) {
      const prop = node!.property as NodeLike;
      const name = !node!.computed && prop.type === 'Identifier' ? prop.value : undefined;
      if (name === 'startswith' || name === 'endswith') {
        return new FunctionValue((args: RuntimeValueLike[]) => {
          const [arg] = args;
          if (args.length !== 1 || isTraced(arg) || !(arg instanceof StringValue)) throw new TraceAbort(`content.${name} with a non-constant`);
          const t = object.value as string;
          const result = name === 'startswith' ? t.startsWith(String(arg.value)) : t.endsWith(String(arg.value));
          guards.push({ parts: object.parts, op: name, arg: String(arg.value), result });
          return new BooleanValue(result);
        });
      }
      if (name === 'strip' || name === 'lstrip' || name === 'rstrip') {
        // Traced only where stripping changes nothing (then the result is the content itself).
        return new FunctionValue((args: RuntimeValueLike[]) => {
          const [arg] = args;
          if (args.length > 1 || isTraced(arg) || (arg !== undefined && !(arg instanceof StringValue)))
            throw new TraceAbort(`content.${name} with a non-constant`);
          const chars = arg === undefined ? '' : String(arg.value);
          const result = stripIsNoop(object.value as string, name, chars);
          if (!result) throw new TraceAbort(`content.${name} changes the probe`);
          guards.push({ parts: object.parts, op: name, arg: chars, result });
          return object;
        });
      }
      throw new TraceAbort(`content.${String(name ?? '[...]')}`);
    }
    pre.set(node!.object, object);
    return base.member(node, e);
  };

  const out = interp.run(template.parsed);
  return { text: String(out.value), guards };
}

const SPACE = /\s/;

/**
 * Whether `text.<op>(chars)` returns `text` unchanged, under both readings of `chars`: @huggingface/jinja
 * strips whitespace whatever `chars` says, Python strips exactly `chars`. So: no whitespace and no
 * character of `chars` at the stripped end(s).
 */
function stripIsNoop(text: string, op: 'strip' | 'lstrip' | 'rstrip', chars: string): boolean {
  if (text.length === 0) return true;
  const ok = (ch: string): boolean => !SPACE.test(ch) && !chars.includes(ch);
  if (op !== 'rstrip' && !ok(text[0])) return false;
  if (op !== 'lstrip' && !ok(text[text.length - 1])) return false;
  return true;
}

/** Whether every guard gives the traced answer for these contents (so the render would take the traced path). */
export function guardsHold(guards: readonly ContentGuard[], contents: readonly string[]): boolean {
  for (const g of guards) {
    let t = '';
    for (const p of g.parts) t += typeof p === 'number' ? contents[p] : p;
    let r: boolean;
    switch (g.op) {
      case 'bool':
        r = t.length > 0;
        break;
      case 'eq':
        r = t === g.arg;
        break;
      case 'includes':
        r = t.includes(g.arg);
        break;
      case 'startswith':
        r = t.startsWith(g.arg);
        break;
      case 'endswith':
        r = t.endsWith(g.arg);
        break;
      default:
        r = stripIsNoop(t, g.op, g.arg);
    }
    if (r !== g.result) return false;
  }
  return true;
}
