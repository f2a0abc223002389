import { describe, expect, it } from 'vitest';
import { runCommand } from '../../src/system/run.ts';
import { isPortwardenError } from '../../src/errors.ts';

describe('runCommand', () => {
  it('collects output and status', async () => {
    const result = await runCommand('sh', ['-c', 'echo out; echo err >&2; exit 3'], { allowFailure: true });
    expect(result).toEqual({ stdout: 'out\n', stderr: 'err\n', status: 3 });
  });

  it('reports a failed command with its status and stderr', async () => {
    await expect(runCommand('sh', ['-c', 'echo broken >&2; exit 5'])).rejects.toThrow(
      /"sh -c .*" exited with status 5: broken/,
    );
  });

  it('reports a missing tool as TOOL_MISSING', async () => {
    const error: unknown = await runCommand('pw-no-such-tool', []).catch((e: unknown) => e);
    expect(isPortwardenError(error) && error.code).toBe('TOOL_MISSING');
  });
});
