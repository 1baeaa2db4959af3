/** One question–answer exchange parsed from an LLM reply. */
export interface ParsedTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** A parsed reply: turns, or the reason it is not a conversation. */
export type ParsedConversation = { ok: true; turns: ParsedTurn[] } | { ok: false; reason: string };

const USER_LABELS = ['user', 'human', 'question', 'q'];
const ASSISTANT_LABELS = ['assistant', 'gpt', 'ai', 'answer', 'a'];
// A turn label at the start of a line, optionally bold or numbered: "User:", "**Assistant:**", "1. Question:".
const LABEL = /^\s*(?:\d+[.)]\s*)?(?:\*\*|__)?\s*(user|human|question|q|assistant|gpt|ai|answer|a)\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?/i;

function roleOf(label: string): 'user' | 'assistant' | undefined {
  const l = label.toLowerCase();
  if (USER_LABELS.includes(l)) return 'user';
  if (ASSISTANT_LABELS.includes(l)) return 'assistant';
  return undefined;
}

function fromJson(text: string): ParsedTurn[] | undefined {
  const fenced = /^```(?:json)?\s*([\s\S]*?)\s*```$/.exec(text);
  const body = fenced ? fenced[1] : text;
  if (!/^[[{]/.test(body)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  const list = Array.isArray(value)
    ? value
    : ((value as Record<string, unknown>).conversations ?? (value as Record<string, unknown>).messages ?? (value as Record<string, unknown>).turns);
  if (!Array.isArray(list)) return undefined;
  const turns: ParsedTurn[] = [];
  for (const item of list) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { role, from, content, value: v } = item as Record<string, unknown>;
    const r = roleOf(String(role ?? from ?? ''));
    const c = content ?? v;
    if (!r || typeof c !== 'string') return undefined;
    turns.push({ role: r, content: c.trim() });
  }
  return turns;
}

/**
 * Parse an LLM reply into alternating user/assistant turns: lines labelled `User:`/`Assistant:` (also
 * Human/GPT, Question/Answer, Q/A, bold or numbered), or a JSON list of `{role, content}` / `{from, value}`.
 * Valid means: at least one exchange, user first, strictly alternating, assistant last, no empty turn.
 */
export function parseConversationReply(reply: string): ParsedConversation {
  const text = reply.trim();
  if (!text) return { ok: false, reason: 'empty reply' };
  let turns = fromJson(text);
  if (!turns) {
    turns = [];
    // Chatter before the first label ("Sure! Here is a conversation:") is dropped, not kept as a turn.
    for (const line of text.split(/\r?\n/)) {
      const m = LABEL.exec(line);
      const role = m ? roleOf(m[1]) : undefined;
      if (m && role) {
        turns.push({ role, content: line.slice(m[0].length).trim() });
      } else if (turns.length) {
        turns[turns.length - 1].content += `\n${line}`;
      }
    }
    turns = turns.map((t) => ({ ...t, content: t.content.trim() }));
    if (!turns.length) return { ok: false, reason: 'no labelled turns (expected "User:" / "Assistant:" lines)' };
  }
  if (!turns.length) return { ok: false, reason: 'no turns' };
  if (turns[0].role !== 'user') return { ok: false, reason: 'conversation does not start with a user turn' };
  for (let i = 0; i < turns.length; i++) {
    if (!turns[i].content) return { ok: false, reason: `turn ${i + 1} is empty` };
    if (i > 0 && turns[i].role === turns[i - 1].role) return { ok: false, reason: `turns ${i} and ${i + 1} are both ${turns[i].role}` };
  }
  if (turns[turns.length - 1].role !== 'assistant') return { ok: false, reason: 'conversation ends without an assistant answer' };
  if (turns.some((t) => t.content.includes('<image>'))) return { ok: false, reason: 'reply contains an <image> placeholder' };
  return { ok: true, turns };
}
