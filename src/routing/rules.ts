/** Models whose name matches `pattern` go to a server of one of `groups`. */
export interface RoutingRule {
  /** Glob over the model name: `*` any run of characters, `?` exactly one. Case-sensitive. */
  readonly pattern: string;
  readonly groups: readonly string[];
}

export interface RoutingRulesOptions {
  /** Distinct model names whose answer is remembered. Default 1024. */
  cacheSize?: number;
}

const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Characters that separate entries and fields in the text form can never be part of a pattern.
const PATTERN_FORBIDDEN = /[\s,=|]/;

/**
 * Parses the text form, e.g. `llama*=vllm,bert-?=onnx,mixtral*=vllm|trtllm`:
 * comma-separated `pattern=group` entries, `|` between alternative groups.
 * Whitespace around entries and names is ignored; an empty text means no
 * rules. Errors name the entry (1-based) and say what is wrong with it.
 */
export function parseRoutingRules(text: string, source = 'TRITON_ROUTES'): RoutingRule[] {
  if (text.trim() === '') return [];
  const rules = text.split(',').map((raw, index) => {
    const entry = raw.trim();
    const where = `${source} entry ${index + 1} "${entry}"`;
    if (entry === '') throw new Error(`${where}: empty entry (check for a stray comma)`);
    const eq = entry.indexOf('=');
    if (eq < 0) throw new Error(`${where}: expected pattern=group`);
    const pattern = entry.slice(0, eq).trim();
    const groups = entry
      .slice(eq + 1)
      .split('|')
      .map((group) => group.trim());
    return { pattern, groups };
  });
  validateRoutingRules(rules, source);
  return rules;
}

/**
 * Checks rules however they were written (env text or config file), so both
 * fail at start with the same messages.
 */
export function validateRoutingRules(rules: readonly RoutingRule[], source = 'routes'): void {
  const seen = new Map<string, number>();
  let catchAll: number | undefined;
  rules.forEach((rule, index) => {
    const where = `${source} entry ${index + 1} "${rule.pattern}=${rule.groups.join('|')}"`;
    if (rule.pattern === '') throw new Error(`${where}: pattern is empty`);
    if (PATTERN_FORBIDDEN.test(rule.pattern)) {
      throw new Error(`${where}: pattern may not contain whitespace, ',', '=' or '|'`);
    }
    if (rule.groups.length === 0 || rule.groups.some((group) => group === '')) {
      throw new Error(`${where}: group name is empty (expected pattern=group or pattern=a|b)`);
    }
    for (const group of rule.groups) {
      if (!GROUP_NAME.test(group)) {
        throw new Error(
          `${where}: group "${group}" must start with a letter or digit and use only letters, digits, '.', '_' or '-'`,
        );
      }
    }
    const earlier = seen.get(rule.pattern);
    if (earlier !== undefined) {
      throw new Error(`${where}: pattern "${rule.pattern}" already used by entry ${earlier}`);
    }
    if (catchAll !== undefined) {
      throw new Error(`${where}: unreachable, entry ${catchAll} ("*") already matches every model`);
    }
    seen.set(rule.pattern, index + 1);
    if (/^\*+$/.test(rule.pattern)) catchAll = index + 1;
  });
}

/**
 * Answers "which server groups may serve this model?": the groups of the
 * first matching rule, or undefined when no rule matches (any group will do).
 * Answers are cached per model name in a bounded map, since the same few
 * models are asked about on every request.
 */
export class RoutingRules {
  readonly rules: readonly RoutingRule[];
  private readonly cacheSize: number;
  // null records "no rule matched", which a plain get() could not tell from a miss.
  private readonly cache = new Map<string, readonly string[] | null>();

  constructor(rules: readonly RoutingRule[], options: RoutingRulesOptions = {}) {
    validateRoutingRules(rules);
    this.cacheSize = options.cacheSize ?? 1024;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 1) {
      throw new RangeError(`routing cacheSize must be an integer >= 1, got ${options.cacheSize}`);
    }
    this.rules = rules.map((rule) =>
      Object.freeze({ pattern: rule.pattern, groups: Object.freeze([...rule.groups]) }),
    );
  }

  /** Model names currently remembered; never more than the cache size. */
  get cachedModels(): number {
    return this.cache.size;
  }

  groupsFor(model: string): readonly string[] | undefined {
    const cached = this.cache.get(model);
    if (cached !== undefined) return cached ?? undefined;
    const rule = this.rules.find((candidate) => matchGlob(candidate.pattern, model));
    const answer = rule ? rule.groups : null;
    // Model names come from requests, so the cache must not grow with them;
    // evicting the oldest entry is enough for a set that is mostly stable.
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(model, answer);
    return answer ?? undefined;
  }
}

/**
 * Glob match with `*` and `?` in linear-ish time: on a mismatch it resumes
 * after the last `*`, so there is no exponential backtracking (unlike a
 * naive regex translation of patterns such as `a*a*a*b`).
 */
export function matchGlob(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    const c = pattern.charCodeAt(p);
    if (p < pattern.length && c === STAR) {
      star = p++;
      resume = t;
    } else if (p < pattern.length && (c === QUESTION || c === text.charCodeAt(t))) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === STAR) p++;
  return p === pattern.length;
}

const STAR = 42; // '*'
const QUESTION = 63; // '?'
