import { PortwardenError, type Diagnostic, type SourceLocation } from '../errors.ts';
import type { Policy } from '../policy/types.ts';
import { featuresUsed, type Backend, type CompiledFile, type Feature } from './backend.ts';
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

/** A feature the policy uses that a target cannot express, with the target's reason. */
export interface UnsupportedFeature {
  feature: Feature;
  where: string;
  reason: string;
}

/** Every feature of the policy that the target cannot express, in the order compile meets them. */
export function unsupportedFeatures(policy: Policy, target: string): UnsupportedFeature[] {
  const backend = findBackend(target);
  return featuresUsed(buildIr(policy)).flatMap(({ feature, where }) => {
    const reason = backend.unsupported[feature];
    return reason === undefined ? [] : [{ feature, where, reason }];
  });
}

/** Where in the policy file a feature is written, for pointing a warning at it. */
const LOCATE: Partial<Record<Feature, (policy: Policy) => SourceLocation | undefined>> = {
  'program-unit': (p) => p.programs.find((r) => r.match.kind === 'unit')?.location,
  'program-user': (p) => p.programs.find((r) => r.match.kind === 'user')?.location,
  'program-path': (p) => p.programs.find((r) => r.match.kind === 'path')?.location,
  'port-forward': (p) => p.forwards[0]?.location,
  'udp-forward': (p) => p.forwards.find((f) => f.protocol === 'udp')?.location,
  'loopback-forward': (p) => p.forwards.find((f) => f.toLoopback)?.location,
  masquerade: (p) => p.routing.find((r) => r.masquerade)?.location,
  routing: (p) => p.routing[0]?.location,
};

/**
 * Warnings for `policy check`: what `compile --target` would refuse, so a valid policy is not
 * reported clean and then fail to compile.
 */
export function targetDiagnostics(policy: Policy, target: string): Diagnostic[] {
  return unsupportedFeatures(policy, target).map((u) => {
    const location = LOCATE[u.feature]?.(policy);
    return {
      severity: 'warning',
      code: 'FEATURE_UNSUPPORTED',
      message: `target ${target} cannot express ${u.feature} (${u.where}): ${u.reason}`,
      hint: `\`portwarden compile --target ${target}\` will fail: change the policy or check it with another --target`,
      ...(location ? { location } : {}),
    };
  });
}

/**
 * Compiles a policy for a target. A feature the target cannot express is an error naming it, never
 * silently dropped.
 */
export function compilePolicy(policy: Policy, target: string, version: string): CompiledFile[] {
  const backend = findBackend(target);
  const missing = unsupportedFeatures(policy, target);
  const first = missing[0];
  if (first) {
    throw new PortwardenError(
      'FEATURE_UNSUPPORTED',
      `target ${backend.name} cannot express ${first.feature} (${first.where}): ${first.reason}`,
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
  return backend.compile(buildIr(policy), { version });
}
