import { describe, it } from 'vitest';
import { netnsUnavailableReason } from '../../src/lab/netns.ts';

/**
 * Declares a test tier that needs root and network namespaces. Off root it skips with the reason in
 * the test name (visible in the report) and on stderr. In CI (PORTWARDEN_REQUIRE_ROOT_TIERS=1) a missing
 * prerequisite fails instead: namespace and firewall tests must run there, never silently skip.
 */
export async function describeRootTier(
  name: string,
  tools: readonly string[],
  body: () => void,
): Promise<void> {
  const reason = await netnsUnavailableReason(tools);
  if (reason === undefined) {
    describe(name, body);
    return;
  }
  if (process.env['PORTWARDEN_REQUIRE_ROOT_TIERS'] === '1') {
    describe(name, () => {
      it('has its prerequisites (required in CI)', () => {
        throw new Error(`root tier "${name}" cannot run: ${reason}`);
      });
    });
    return;
  }
  process.stderr.write(`portwarden tests: skipping "${name}": ${reason}\n`);
  describe(name, () => {
    it.skip(`skipped: ${reason}`, () => undefined);
  });
}
