import type { z } from 'zod';

/** One config problem, named by its field: what an operator edits. */
export interface ConfigIssue {
  /** Dotted path of the field (`aggregator.adress`), or "(top level)". */
  field: string;
  message: string;
}

/**
 * zod's issues, reworded so the first names the field the operator has to edit. A typo (`adress:` in a
 * `.strict()` object) gives two issues: the required `address` "received undefined", and "Unrecognized key"
 * reported on the parent object. zod lists the missing field first, so the typo was reported on the field the
 * operator never wrote. Here an unknown key is named itself, with the closest valid key, and comes first: it
 * usually explains the missing one. A missing field says "is missing".
 */
export function configIssues(schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const unknown: ConfigIssue[] = [];
  const rest: ConfigIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const valid = keysAt(schema, issue.path);
      for (const key of issue.keys) {
        const near = valid ? closest(key, valid) : undefined;
        unknown.push({
          field: fieldOf([...issue.path, key]),
          message: `is not a known field${near ? ` (did you mean "${near}"?)` : valid?.length ? `; valid here: ${valid.join(', ')}` : ''}`,
        });
      }
    } else if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) {
      rest.push({ field: fieldOf(issue.path), message: `is missing (expected ${issue.expected})` });
    } else {
      rest.push({ field: fieldOf(issue.path), message: issue.message });
    }
  }
  return [...unknown, ...rest];
}

const fieldOf = (path: readonly PropertyKey[]): string => (path.length ? path.map(String).join('.') : '(top level)');

/** The keys an object schema at `path` accepts (through optional, default, nullable, arrays, records and pipes). */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let s: unknown = schema;
  for (let i = 0; ; ) {
    s = unwrap(s);
    if (i === path.length) break;
    const def = defOf(s);
    if (def?.type === 'object') s = (s as { shape: Record<string, unknown> }).shape[String(path[i])];
    else if (def?.type === 'array') s = def.element;
    else if (def?.type === 'record') s = def.valueType;
    else return undefined;
    if (s === undefined) return undefined;
    i++;
  }
  return defOf(s)?.type === 'object' ? Object.keys((s as { shape: Record<string, unknown> }).shape) : undefined;
}

interface Def { type: string; innerType?: unknown; element?: unknown; valueType?: unknown; in?: unknown }

function defOf(s: unknown): Def | undefined {
  return (s as { def?: Def } | undefined)?.def;
}

function unwrap(s: unknown): unknown {
  for (let d = defOf(s); d && ['optional', 'default', 'nullable', 'prefault', 'readonly', 'catch', 'pipe'].includes(d.type); d = defOf(s)) {
    s = d.type === 'pipe' ? d.in : d.innerType;
  }
  return s;
}

/** The valid key a typo most likely meant: smallest edit distance, at most a third of its length (≥ 2). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) { best = c; bestD = d; }
  }
  return best;
}

/** Damerau–Levenshtein (optimal string alignment): a swapped pair of letters is one edit, as typos are. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
