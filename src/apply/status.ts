import { unifiedDiff } from './diff.ts';
import { readSysctl } from './kernel-apply.ts';
import { listCurrent, zeroNftCounters, type ApplyBackend } from '../ruleset/load-live.ts';
import { readCurrent, readPending, readPersisted, type CurrentState, type PersistedState } from './state.ts';

/**
 * `portwarden status`: what portwarden loaded, whether it is still what was applied (drift), a
 * pending confirmation, the kernel settings it manages and whether it is persisted for boot.
 */
export interface ApplyStatus {
  /** portwarden's ruleset is in the kernel; null when that cannot be read (not root). */
  loaded: boolean | null;
  current: Omit<CurrentState, 'listing' | 'tables' | 'kernel'> | null;
  /** null when nothing was applied or the ruleset cannot be read; diff is applied -> loaded. */
  drift: { drifted: boolean; diff: string } | null;
  pending: { id: string; policyFile: string; deadline: string; secondsLeft: number } | null;
  kernel: { name: string; wanted: string; now: string | null; reason: string }[];
  persisted: { id: string; at: string; files: string[]; isCurrent: boolean } | null;
  /** State files that could not be read, with what to do. */
  problems: string[];
}

function guarded<T>(problems: string[], read: () => T): T | null {
  try {
    return read();
  } catch (error) {
    const hint =
      error instanceof Error && 'hint' in error && typeof error.hint === 'string' ? ` (${error.hint})` : '';
    problems.push(`${(error as Error).message}${hint}`);
    return null;
  }
}

/** The loaded part of the ruleset in the same normal form apply recorded (counters zeroed). */
async function loadedListing(current: CurrentState | null): Promise<string> {
  const backend: ApplyBackend = current?.backend ?? 'nftables';
  return zeroNftCounters(await listCurrent(backend, new Map(current?.tables ?? [])));
}

function persistedSummary(
  persisted: PersistedState | null,
  current: CurrentState | null,
): ApplyStatus['persisted'] {
  if (!persisted) return null;
  return {
    id: persisted.id,
    at: persisted.at,
    files: [...persisted.files.map((f) => f.path), ...persisted.edits.map((e) => e.path)],
    isCurrent: persisted.id === current?.id,
  };
}

function isLoaded(backend: ApplyBackend, listing: string): boolean {
  return backend === 'nftables' ? listing.trim() !== '' : /^:PW-/m.test(listing);
}

function aboutCurrent(current: CurrentState): NonNullable<ApplyStatus['current']> {
  const { id, backend, policyFile, policyHash, appliedAt, confirmedAt } = current;
  return { id, backend, policyFile, policyHash, appliedAt, confirmedAt };
}

export async function applyStatus(dir: string, now = Date.now()): Promise<ApplyStatus> {
  const problems: string[] = [];
  const current = guarded(problems, () => readCurrent(dir));
  const pending = guarded(problems, () => readPending(dir));
  const persisted = guarded(problems, () => readPersisted(dir));
  const root = process.getuid?.() === 0;
  const listing = root ? await loadedListing(current) : null;
  const applied = current?.listing ?? '';
  return {
    loaded: listing === null ? null : isLoaded(current?.backend ?? 'nftables', listing),
    current: current ? aboutCurrent(current) : null,
    drift:
      current && listing !== null
        ? {
            drifted: zeroNftCounters(applied) !== listing,
            diff: unifiedDiff(zeroNftCounters(applied), listing, ['applied', 'loaded']),
          }
        : null,
    pending: pending
      ? {
          id: pending.id,
          policyFile: pending.policyFile,
          deadline: pending.deadline,
          secondsLeft: Math.max(0, Math.round((Date.parse(pending.deadline) - now) / 1000)),
        }
      : null,
    kernel: (current?.kernel ?? []).map((k) => ({
      name: k.name,
      wanted: k.value,
      now: readSysctl(k.name),
      reason: k.reason,
    })),
    persisted: persistedSummary(persisted, current),
    problems: root
      ? problems
      : [...problems, 'reading the loaded ruleset needs root: loaded and drift unknown'],
  };
}
