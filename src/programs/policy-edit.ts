import { isMap, isSeq, parseDocument, YAMLSeq, type Document, type YAMLMap } from 'yaml';
import type { Decision } from './types.ts';

/**
 * Writes program rules into a policy file's `programs:` section through the yaml Document API, so the
 * file's comments, order and formatting stay as they were (pure: text in, text out).
 */

/** One outbound rule of a `path:` program, as the policy file writes it. */
export interface PathRule {
  allow: string;
  to?: string[];
}

/** A program entry to merge: its path, its rules, and a comment for the entry when it is new. */
export interface ProgramEntry {
  path: string;
  rules: PathRule[];
  comment: string;
}

/** The rule an "always" allow decision stands for. */
export function ruleOfDecision(
  d: Pick<Decision, 'scope' | 'protocol' | 'remoteAddress' | 'remotePort'>,
): PathRule {
  if (d.scope === 'always' || d.protocol === null || d.remotePort === null)
    return { allow: 'T:1-65535,U:1-65535' };
  const allow = `${d.protocol}/${d.remotePort}`;
  return d.scope === 'destination' && d.remoteAddress !== null ? { allow, to: [d.remoteAddress] } : { allow };
}

function sameRule(node: unknown, rule: PathRule): boolean {
  if (!isMap(node)) return false;
  const value = node.toJSON() as { allow?: unknown; to?: unknown };
  return (
    String(value.allow) === rule.allow && JSON.stringify(value.to ?? null) === JSON.stringify(rule.to ?? null)
  );
}

function programsSeq(doc: Document): YAMLSeq {
  const existing = doc.get('programs', true);
  if (isSeq(existing)) return existing;
  const seq = new YAMLSeq();
  doc.set('programs', seq);
  return seq;
}

function ruleNode(doc: Document, rule: PathRule): YAMLMap {
  const node = doc.createNode(
    rule.to ? { allow: rule.allow, to: rule.to } : { allow: rule.allow },
  ) as YAMLMap;
  const to = node.get('to', true);
  if (isSeq(to)) to.flow = true;
  return node;
}

/** Adds each entry's rules to the `path:` program of the same path (a new one when there is none). */
export function addProgramRules(text: string, entries: readonly ProgramEntry[]): string {
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error) throw error;
  const programs = programsSeq(doc);
  for (const entry of entries) {
    let program = programs.items.find(
      (item): item is YAMLMap => isMap(item) && item.get('path') === entry.path,
    );
    if (!program) {
      const created = doc.createNode({ path: entry.path, comment: entry.comment, outbound: [] });
      if (!isMap(created)) continue;
      programs.items.push(created);
      program = created;
    }
    const existing: unknown = program.get('outbound', true);
    const seq = isSeq(existing) ? existing : new YAMLSeq();
    if (!isSeq(existing)) program.set('outbound', seq);
    for (const rule of entry.rules)
      if (!seq.items.some((item) => sameRule(item, rule))) seq.items.push(ruleNode(doc, rule));
  }
  return doc.toString();
}
