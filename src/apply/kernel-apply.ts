import { existsSync, writeFileSync } from 'node:fs';
import { PortwardenError } from '../errors.ts';
import type { KernelSetting } from './kernel-settings.ts';
import { readTextQuietly } from '../system/files.ts';

/**
 * Reading and writing the sysctls a policy needs, in the current network namespace (forwarding and
 * route_localnet are per namespace), and the plan of what an apply changes: the policy's settings,
 * plus settings an earlier apply managed that the new policy no longer needs, put back to the value
 * they had before portwarden touched them.
 */

/** A sysctl an apply changed, with its value before: what a rollback writes back. */
export interface KernelChange {
  name: string;
  before: string;
  after: string;
  reason: string;
}

/** A sysctl portwarden keeps set while a policy is loaded, and the value it had before portwarden. */
export interface ManagedSetting {
  name: string;
  value: string;
  original: string;
  reason: string;
}

export interface KernelPlan {
  /** Writes the apply makes (only settings whose value differs). */
  changes: KernelChange[];
  /** What portwarden manages once the apply is in. */
  managed: ManagedSetting[];
  /** Settings reported, not changed: interfaces that do not exist now. */
  notes: string[];
  /** Kernel modules the ruleset needs: reported, never loaded or unloaded by apply. */
  modules: { name: string; loaded: boolean; reason: string }[];
}

export type SysctlReader = (name: string) => string | null;

/** /proc/sys path of a sysctl; interface names may contain dots (eth0.100), so conf.<if>.<key> is split by hand. */
export function sysctlPath(name: string): string {
  const conf = /^net\.(ipv4|ipv6)\.conf\.([^/]+)\.([a-z_]+)$/.exec(name);
  if (conf && conf[2] !== '.' && conf[2] !== '..')
    return `/proc/sys/net/${conf[1] ?? ''}/conf/${conf[2] ?? ''}/${conf[3] ?? ''}`;
  if (!/^[a-z0-9_.]+$/.test(name)) throw new PortwardenError('INTERNAL', `not a sysctl name: "${name}"`);
  return `/proc/sys/${name.replaceAll('.', '/')}`;
}

/** A sysctl's value, or null when it does not exist (an interface that is not there). */
export function readSysctl(name: string): string | null {
  return readTextQuietly(sysctlPath(name))?.trim() ?? null;
}

export function writeSysctl(name: string, value: string): void {
  try {
    writeFileSync(sysctlPath(name), `${value}\n`);
  } catch (error) {
    throw new PortwardenError(
      'KERNEL_FEATURE_MISSING',
      `cannot set ${name}=${value}: ${(error as Error).message}`,
      {
        hint: 'apply needs root in the network namespace whose firewall it changes',
      },
    );
  }
}

export function moduleLoaded(name: string): boolean {
  return existsSync(`/sys/module/${name}`);
}

/** What an apply of `required` changes, given what an earlier apply manages (pure, with `read` injected). */
export function planKernel(
  required: readonly KernelSetting[],
  previous: readonly ManagedSetting[],
  read: SysctlReader,
  isModuleLoaded: (name: string) => boolean = moduleLoaded,
): KernelPlan {
  const plan: KernelPlan = { changes: [], managed: [], notes: [], modules: [] };
  for (const setting of required) {
    if (setting.kind === 'module') {
      const name = setting.name.replace(/^module:/, '');
      plan.modules.push({ name, loaded: isModuleLoaded(name), reason: setting.reason });
      continue;
    }
    const now = read(setting.name);
    if (now === null) {
      plan.notes.push(
        `${setting.name}: does not exist now (is the interface there?), not set (${setting.reason})`,
      );
      continue;
    }
    const original = previous.find((p) => p.name === setting.name)?.original ?? now;
    plan.managed.push({ name: setting.name, value: setting.value, original, reason: setting.reason });
    if (now !== setting.value)
      plan.changes.push({ name: setting.name, before: now, after: setting.value, reason: setting.reason });
  }
  for (const old of previous.filter((p) => !required.some((r) => r.name === p.name))) {
    const now = read(old.name);
    if (now !== null && now !== old.original)
      plan.changes.push({
        name: old.name,
        before: now,
        after: old.original,
        reason: 'no longer needed: back to its value from before portwarden',
      });
  }
  return plan;
}

/** Makes the changes; when one fails, the ones made are undone before the error goes up. */
export function applyKernel(changes: readonly KernelChange[]): void {
  const done: KernelChange[] = [];
  try {
    for (const change of changes) {
      writeSysctl(change.name, change.after);
      done.push(change);
    }
  } catch (error) {
    restoreKernel(done);
    throw error;
  }
}

/** Writes the values from before, last change first; returns what could not be restored. */
export function restoreKernel(changes: readonly KernelChange[]): string[] {
  const failed: string[] = [];
  for (const change of [...changes].reverse()) {
    try {
      writeSysctl(change.name, change.before);
    } catch (error) {
      failed.push((error as Error).message);
    }
  }
  return failed;
}
