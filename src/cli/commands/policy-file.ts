import { readFileSync } from 'node:fs';
import { PortwardenError } from '../../errors.ts';
import type { Policy } from '../../policy/types.ts';

/** Reads a policy file, or stdin for `-`, as text. */
export function readPolicyText(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new PortwardenError(
      'FILE_UNREADABLE',
      `cannot read policy "${file}": ${(error as Error).message}`,
      {
        hint: 'give the path of a YAML policy; `portwarden policy init` writes a starter one',
      },
    );
  }
}

/** Reads and validates a policy: every error is reported (exit 2) with file:line:col. */
export async function readPolicyFile(file: string): Promise<Policy> {
  const { loadPolicyOrThrow } = await import('../../policy/load.ts');
  return loadPolicyOrThrow(readPolicyText(file), file);
}
