import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PortwardenError } from '../errors.ts';
import { requireRoot } from './apply.ts';
import {
  recordHistory,
  readApplied,
  readCurrent,
  readPending,
  readPersisted,
  withLock,
  writePersisted,
  type CurrentState,
  type PersistedState,
} from './state.ts';
import { writeFileAtomic } from '../system/atomic-write.ts';
import { readTextIfExists } from '../system/files.ts';

/**
 * `persist` / `unpersist`: installs the confirmed ruleset where the distribution loads it at boot,
 * and removes exactly that again. nftables: a portwarden-owned file, included from
 * /etc/nftables.conf when that exists, else loaded by a small portwarden-owned systemd unit ordered
 * before network-pre.target. iptables: netfilter-persistent's /etc/iptables/rules.v4 and rules.v6.
 * The kernel settings go to /etc/sysctl.d/90-portwarden.conf. The /etc root is a parameter.
 */

export const DEFAULT_ETC_DIR = '/etc';
const INCLUDE_MARK = '# added by portwarden persist';

export interface PersistOptions {
  stateDir: string;
  /** The /etc to write under (default /etc; PORTWARDEN_ETC_DIR or --etc-dir). */
  etcDir: string;
  /** For nftables: include from nftables.conf, or a systemd unit; default: include when nftables.conf exists. */
  via?: 'include' | 'unit';
}

/** One file to write; the previous content is kept so unpersist can put it back. */
interface Planned {
  path: string;
  content: string;
  symlinkTo?: string;
}

export function etcDir(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  return explicit ?? env['PORTWARDEN_ETC_DIR'] ?? DEFAULT_ETC_DIR;
}

function findTool(name: string): string {
  const dirs = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p)) ?? `/usr/sbin/${name}`;
}

function unitText(rulesetPath: string): string {
  return [
    '# written by `portwarden persist`; `portwarden unpersist` removes it',
    '[Unit]',
    'Description=portwarden firewall ruleset',
    'DefaultDependencies=no',
    'Wants=network-pre.target',
    'Before=network-pre.target shutdown.target',
    'Conflicts=shutdown.target',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=${findTool('nft')} -f ${rulesetPath}`,
    '',
    '[Install]',
    'WantedBy=sysinit.target',
    '',
  ].join('\n');
}

function sysctlText(current: CurrentState): string {
  const lines = current.kernel.map((k) => `# ${k.reason}\n${k.name} = ${k.value}`);
  return `# written by \`portwarden persist\` for ${current.policyFile} (${current.id})\n${lines.join('\n')}\n`;
}

/** The files persist writes for the confirmed apply `current` (pure apart from existsSync for the mode). */
function plan(
  options: PersistOptions,
  current: CurrentState,
  ruleset: { suffix: string; content: string }[],
): {
  files: Planned[];
  include: { path: string; line: string } | null;
} {
  const etc = options.etcDir;
  const files: Planned[] = [];
  let include: { path: string; line: string } | null = null;
  if (current.backend === 'nftables') {
    const rules = join(etc, 'portwarden', 'portwarden.nft');
    files.push({ path: rules, content: ruleset[0]?.content ?? '' });
    const conf = join(etc, 'nftables.conf');
    if ((options.via ?? (existsSync(conf) ? 'include' : 'unit')) === 'include') {
      include = { path: conf, line: `include "${rules}" ${INCLUDE_MARK}` };
    } else {
      const unit = join(etc, 'systemd', 'system', 'portwarden.service');
      files.push({ path: unit, content: unitText(rules) });
      files.push({
        path: join(etc, 'systemd', 'system', 'sysinit.target.wants', 'portwarden.service'),
        content: '',
        symlinkTo: unit,
      });
    }
  } else {
    for (const file of ruleset)
      files.push({
        path: join(etc, 'iptables', `rules${file.suffix === '.v6' ? '.v6' : '.v4'}`),
        content: file.content,
      });
  }
  if (current.kernel.length > 0)
    files.push({ path: join(etc, 'sysctl.d', '90-portwarden.conf'), content: sysctlText(current) });
  return { files, include };
}

/** Creates the missing parents of `path`, returning the ones it created (deepest last). */
function makeParents(path: string, stop: string): string[] {
  const missing: string[] = [];
  for (let dir = dirname(path); dir !== stop && dir.startsWith(stop) && !existsSync(dir); dir = dirname(dir))
    missing.unshift(dir);
  for (const dir of missing) mkdirSync(dir, { mode: 0o755 });
  return missing;
}

function confirmedCurrent(dir: string): CurrentState {
  if (readPending(dir)) {
    throw new PortwardenError(
      'APPLY_PENDING',
      'the applied ruleset is not confirmed yet, so it is not persisted',
      {
        hint: 'run `portwarden confirm --persist` (or `portwarden confirm`, then `portwarden persist`)',
      },
    );
  }
  const current = readCurrent(dir);
  if (!current || current.confirmedAt === null) {
    throw new PortwardenError('NOTHING_APPLIED', 'portwarden has applied no confirmed ruleset to persist', {
      hint: 'apply a policy and confirm it first: `portwarden apply POLICY --persist`',
    });
  }
  return current;
}

function writePlanned(etc: string, files: readonly Planned[], state: PersistedState): void {
  for (const file of files) {
    state.dirs.push(...makeParents(file.path, etc));
    const previous = file.symlinkTo ? null : readTextIfExists(file.path);
    state.files.push({ path: file.path, previous });
    if (file.symlinkTo) {
      rmSync(file.path, { force: true });
      symlinkSync(file.symlinkTo, file.path);
    } else writeFileAtomic(file.path, file.content, 0o644);
  }
}

/** Installs the confirmed ruleset (and its kernel settings) for boot; replaces an earlier persist. */
export async function persistCurrent(options: PersistOptions): Promise<PersistedState> {
  requireRoot('persist');
  return withLock(options.stateDir, () => {
    const current = confirmedCurrent(options.stateDir);
    const record = readApplied(options.stateDir, current.id);
    if (!record) {
      throw new PortwardenError(
        'NOTHING_APPLIED',
        `the record of apply ${current.id} is gone from the state directory`,
        {
          hint: 'apply the policy again and confirm it, then persist',
        },
      );
    }
    const earlier = readPersisted(options.stateDir);
    if (earlier) removePersisted(earlier);
    const { files, include } = plan(options, current, record.ruleset.files);
    const state: PersistedState = {
      id: current.id,
      backend: current.backend,
      policyFile: current.policyFile,
      policyHash: current.policyHash,
      at: new Date().toISOString(),
      etcDir: options.etcDir,
      files: [],
      edits: [],
      dirs: [],
    };
    try {
      writePlanned(options.etcDir, files, state);
      if (include) addInclude(include, state);
    } finally {
      writePersisted(options.stateDir, state);
    }
    recordHistory(options.stateDir, 'persisted', current, { at: state.at });
    return state;
  });
}

function addInclude(include: { path: string; line: string }, state: PersistedState): void {
  const text = readFileSync(include.path, 'utf8');
  if (!text.split('\n').includes(include.line))
    writeFileAtomic(
      include.path,
      `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${include.line}\n`,
      0o644,
    );
  state.edits.push(include);
}

/** Undoes a persist: files put back as they were (or removed), the include line removed, created dirs removed. */
function removePersisted(persisted: PersistedState): void {
  for (const edit of persisted.edits) {
    const text = readTextIfExists(edit.path);
    if (text !== null)
      writeFileAtomic(
        edit.path,
        text
          .split('\n')
          .filter((l) => l !== edit.line)
          .join('\n'),
        0o644,
      );
  }
  for (const file of [...persisted.files].reverse()) {
    if (file.previous === null) rmSync(file.path, { force: true });
    else writeFileAtomic(file.path, file.previous, 0o644);
  }
  for (const dir of [...persisted.dirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty: something else was put there since, so it stays
    }
  }
}

/** Removes exactly what `persist` wrote. */
export async function unpersist(stateDir: string): Promise<PersistedState> {
  requireRoot('unpersist');
  return withLock(stateDir, () => {
    const persisted = readPersisted(stateDir);
    if (!persisted) {
      throw new PortwardenError('NOTHING_APPLIED', 'nothing is persisted by portwarden', {
        hint: '`portwarden status` shows what is loaded and persisted',
      });
    }
    removePersisted(persisted);
    writePersisted(stateDir, null);
    recordHistory(stateDir, 'unpersisted', persisted);
    return persisted;
  });
}
