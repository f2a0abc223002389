import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isPortwardenError, PortwardenError } from '../../src/errors.ts';
import { processStartTime, readTextIfExists, readTextQuietly, readUserFile } from '../../src/system/files.ts';

describe('reading files (system/files.ts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-files-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a.txt');
  writeFileSync(file, 'text');

  it('readTextIfExists: text, null when missing, the caller’s error otherwise', () => {
    expect(readTextIfExists(file)).toBe('text');
    expect(readTextIfExists(join(dir, 'missing'))).toBeNull();
    expect(readTextIfExists(join(file, 'below-a-file'))).toBeNull();
    expect(() =>
      readTextIfExists(dir, (e) => new PortwardenError('STATE_UNAVAILABLE', `no: ${e.code}`)),
    ).toThrow('no: EISDIR');
  });

  it('readTextQuietly: null for whatever cannot be read', () => {
    expect(readTextQuietly(dir)).toBeNull();
    expect(readTextQuietly(file)).toBe('text');
  });

  it('readUserFile: FILE_UNREADABLE naming what, where and why, with the hint', () => {
    try {
      readUserFile(join(dir, 'missing.json'), 'ruleset', 'save one first');
      expect.unreachable();
    } catch (error) {
      expect(isPortwardenError(error) && error.code).toBe('FILE_UNREADABLE');
      expect((error as PortwardenError).message).toBe(
        `cannot read ruleset "${join(dir, 'missing.json')}": it does not exist`,
      );
      expect((error as PortwardenError).hint).toBe('save one first');
    }
  });

  it('processStartTime: a number for this process, null for a pid that does not exist', () => {
    expect(processStartTime(process.pid)).toMatch(/^\d+$/);
    expect(processStartTime(2 ** 22 + 1)).toBeNull();
  });
});
