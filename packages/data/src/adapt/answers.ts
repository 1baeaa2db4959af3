/** VQA-style answer normalisation: lower case, trimmed, no trailing period, single spaces. */
export function normalizeAnswer(answer: string): string {
  return answer.trim().toLowerCase().replace(/\s+/g, ' ').replace(/\.+$/, '').trim();
}

/**
 * The most common of several human answers (VQAv2 has ten), compared after normalisation; ties go to
 * the answer given first. Returns the first original spelling of the winner, or undefined when empty.
 */
export function majorityAnswer(answers: readonly string[]): string | undefined {
  const counts = new Map<string, { count: number; first: number; original: string }>();
  answers.forEach((answer, i) => {
    const key = normalizeAnswer(answer);
    if (!key) return;
    const entry = counts.get(key);
    if (entry) entry.count++;
    else counts.set(key, { count: 1, first: i, original: answer.trim() });
  });
  let best: { count: number; first: number; original: string } | undefined;
  for (const entry of counts.values()) {
    if (!best || entry.count > best.count || (entry.count === best.count && entry.first < best.first)) best = entry;
  }
  return best?.original;
}
