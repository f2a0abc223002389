import type { Policy } from '../../policy/types.ts';
import { readInputFile } from '../files.ts';

/** Reads a policy file, or stdin for `-`, as text. */
export function readPolicyText(file: string): string {
  return readInputFile(file, {
    what: 'policy',
    hint: 'give the path of a YAML policy; `portwarden policy init` writes a starter one',
  });
}

/** Reads and validates a policy: every error is reported (exit 2) with file:line:col. */
export async function readPolicyFile(file: string): Promise<Policy> {
  const { loadPolicyOrThrow } = await import('../../policy/load.ts');
  return loadPolicyOrThrow(readPolicyText(file), file);
}
