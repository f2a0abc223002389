import { PortwardenError } from '../errors.ts';
import type { Policy } from '../policy/types.ts';
import { featuresUsed, type Backend, type CompiledFile } from './backend.ts';
import { buildIr } from './ir.ts';
import { nftables } from './nftables.ts';
import { iptables } from './iptables.ts';
import { ipchains } from './ipchains.ts';
import { pf } from './pf.ts';
import { windows } from './windows.ts';

/** Every compile target; add a backend here and the golden and conformance suites pick it up. */
export const BACKENDS: readonly Backend[] = [nftables, iptables, ipchains, pf, windows];

export function findBackend(name: string): Backend {
  const backend = BACKENDS.find((b) => b.name === name);
  if (!backend) {
    throw new PortwardenError('OPTION_INVALID', `unknown target "${name}"`, {
      hint: `targets: ${BACKENDS.map((b) => b.name).join(', ')}`,
    });
  }
  return backend;
}

/**
 * Compiles a policy for a target. A feature the target cannot express is an error naming it, never
 * silently dropped.
 */
export function compilePolicy(policy: Policy, target: string, version: string): CompiledFile[] {
  const backend = findBackend(target);
  const ir = buildIr(policy);
  const missing = featuresUsed(ir).filter((u) => backend.unsupported[u.feature] !== undefined);
  const first = missing[0];
  if (first) {
    throw new PortwardenError(
      'FEATURE_UNSUPPORTED',
      `target ${backend.name} cannot express ${first.feature} (${first.where}): ${backend.unsupported[first.feature] ?? ''}`,
      {
        hint:
          missing.length > 1
            ? `also unsupported here: ${missing
                .slice(1)
                .map((m) => m.feature)
                .join(', ')}; choose another --target or change the policy`
            : 'choose another --target or change the policy',
      },
    );
  }
  return backend.compile(ir, { version });
}
