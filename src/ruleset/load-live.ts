import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompiledFile } from '../compile/backend.ts';
import { PortwardenError } from '../errors.ts';
import { runCommand } from '../system/run.ts';

/**
 * Loading, snapshotting and restoring a ruleset in the current network namespace, touching only what
 * portwarden owns: for nftables the `inet portwarden` table (other tables, Docker's included, are left
 * alone, and a full `list ruleset` with iptables-nft rules in it could not be reloaded anyway); for
 * iptables the tables the compiled files write (filter, plus nat/raw when used), per family.
 */

export type ApplyBackend = 'nftables' | 'iptables';

/** A ruleset as files: for nftables one file, for iptables one per family (suffix .v4 / .v6). */
export interface RulesetFiles {
  backend: ApplyBackend;
  files: { suffix: string; content: string }[];
}

const NFT_TABLE = ['inet', 'portwarden'] as const;
const NFT_HEADER = `table ${NFT_TABLE.join(' ')}\ndelete table ${NFT_TABLE.join(' ')}\n`;

function restoreTool(suffix: string): string {
  return suffix === '.v6' ? 'ip6tables-restore' : 'iptables-restore';
}

function saveTool(suffix: string): string {
  return suffix === '.v6' ? 'ip6tables-save' : 'iptables-save';
}

/** The command that loads one file of a ruleset: `nft -f`, `iptables-restore` or `ip6tables-restore`. */
export function loadCommand(backend: ApplyBackend, suffix: string, path: string): [string, string[]] {
  return backend === 'nftables' ? ['nft', ['-f', path]] : [restoreTool(suffix), [path]];
}

/** Tables an iptables-restore file writes (`*filter`, `*nat`, ...). */
export function iptablesTables(content: string): string[] {
  return [...content.matchAll(/^\*(\w+)\s*$/gm)].map((m) => m[1] ?? '').filter((t) => t !== '');
}

async function withFile<T>(content: string, use: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-apply-'));
  try {
    const file = join(dir, 'ruleset');
    writeFileSync(file, content, { mode: 0o600 });
    return await use(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function loadError(what: string, stderr: string): PortwardenError {
  const first = stderr.trim().split('\n').slice(0, 3).join(' / ') || 'no error output';
  return new PortwardenError('TOOL_FAILED', `${what}: ${first}`, {
    hint: 'the ruleset was not loaded; the one in place is unchanged',
  });
}

/** The nftables table as `nft list` prints it, or '' when it does not exist. */
async function listNftTable(): Promise<string> {
  const result = await runCommand('nft', ['list', 'table', ...NFT_TABLE], { allowFailure: true });
  return result.status === 0 ? result.stdout : '';
}

/** Counters change with traffic: zeroed, so a diff shows only rule changes. */
export function zeroNftCounters(listing: string): string {
  return listing.replace(/counter packets \d+ bytes \d+/g, 'counter packets 0 bytes 0');
}

/** iptables-save of the given tables, without the timestamp comments and with zeroed counters. */
async function saveIptables(suffix: string, tables: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const table of tables) {
    const result = await runCommand(saveTool(suffix), ['-t', table], { allowFailure: true });
    // A table never used is empty in iptables-save: restoring it must empty it again.
    parts.push(
      result.status === 0 && result.stdout.includes(`*${table}`) ? result.stdout : emptyTable(table),
    );
  }
  return normalizeIptablesSave(parts.join(''));
}

const BUILTIN_CHAINS: Record<string, string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
};

function emptyTable(table: string): string {
  const chains = (BUILTIN_CHAINS[table] ?? []).map((c) => `:${c} ACCEPT [0:0]\n`).join('');
  return `*${table}\n${chains}COMMIT\n`;
}

export function normalizeIptablesSave(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.replace(/\[\d+:\d+\]/, '[0:0]'))
    .join('\n');
}

/**
 * A rule that matches a cgroup that no longer exists can match no socket, but nft lists it by its
 * numeric id (`socket cgroupv2 level 2 3`), which `nft -f` rejects, and a path that has gone since
 * cannot be loaded either. Such rules are dropped (pure, with `cgroupExists` injected): the restored
 * ruleset accepts and drops exactly what the old one did, and it loads.
 */
export function dropDeadCgroupRules(
  text: string,
  cgroupExists: (path: string) => boolean,
): { content: string; dropped: string[] } {
  const dropped: string[] = [];
  const kept = text.split('\n').filter((line) => {
    const nft = /socket cgroupv2 level \d+ (?:"([^"]*)"|(\d+))/.exec(line);
    const ipt = /-m cgroup --path ("[^"]*"|\S+)/.exec(line);
    const path = nft ? (nft[1] ?? null) : ipt ? (ipt[1] ?? '').replace(/^"|"$/g, '') : undefined;
    if (path === undefined || (path !== null && cgroupExists(path))) return true;
    dropped.push(line.trim());
    return false;
  });
  return { content: kept.join('\n'), dropped };
}

/** cgroup v2 paths as nft resolves them (/sys/fs/cgroup) and, for xt_cgroup, the hybrid layout's unified/. */
export function cgroupExists(path: string): boolean {
  return ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].some((root) => existsSync(`${root}/${path}`));
}

/** The ruleset with rules of vanished cgroups dropped, so it loads now (see dropDeadCgroupRules). */
export function restorable(ruleset: RulesetFiles): { ruleset: RulesetFiles; dropped: string[] } {
  const dropped: string[] = [];
  const files = ruleset.files.map((f) => {
    const clean = dropDeadCgroupRules(f.content, cgroupExists);
    dropped.push(...clean.dropped);
    return { suffix: f.suffix, content: clean.content };
  });
  return { ruleset: { backend: ruleset.backend, files }, dropped };
}

/**
 * What restores portwarden's part of the live ruleset as it is now. For nftables a file that
 * recreates the table exactly (or removes it when there was none), loaded in one transaction. Rules
 * of vanished cgroups are left out (they match nothing and could not be loaded again).
 */
export async function snapshot(
  backend: ApplyBackend,
  tablesBySuffix: Map<string, string[]>,
): Promise<RulesetFiles> {
  if (backend === 'nftables') {
    const files = [{ suffix: '', content: NFT_HEADER + (await listNftTable()) }];
    return restorable({ backend, files }).ruleset;
  }
  const files: RulesetFiles['files'] = [];
  for (const [suffix, tables] of tablesBySuffix)
    files.push({ suffix, content: await saveIptables(suffix, tables) });
  return restorable({ backend, files }).ruleset;
}

/**
 * Proves a snapshot can be loaded again, by loading it in a throw-away network namespace
 * (`unshare -n`) before anything changes: a rollback must never meet a file the kernel rejects.
 */
export async function proveLoadable(saved: RulesetFiles): Promise<void> {
  for (const file of saved.files) {
    await withFile(file.content, async (path) => {
      const tool = saved.backend === 'nftables' ? 'nft -f' : restoreTool(file.suffix);
      const result = await runCommand('unshare', ['-n', 'sh', '-c', `${tool} "$1"`, 'sh', path], {
        allowFailure: true,
        timeoutMs: 60_000,
      });
      if (result.status !== 0) throw unloadableSnapshot(result.stderr);
    });
  }
}

function unloadableSnapshot(stderr: string): PortwardenError {
  const first = stderr.trim().split('\n').slice(0, 3).join(' / ') || 'no error output';
  return new PortwardenError(
    'TOOL_FAILED',
    `the ruleset in place could not be saved in a form that loads again, so apply changed nothing: ${first}`,
    {
      hint: 'look at `nft list table inet portwarden` (or iptables-save) for rules listed in a form the kernel does not accept, and report it',
    },
  );
}

/** Checks a ruleset without loading it (`nft -c`, `iptables-restore --test`). */
export async function checkRuleset(ruleset: RulesetFiles): Promise<void> {
  for (const file of ruleset.files) {
    await withFile(file.content, async (path) => {
      const [tool, args] =
        ruleset.backend === 'nftables'
          ? ['nft', ['-c', '-f', path]]
          : [restoreTool(file.suffix), ['--test', path]];
      const result = await runCommand(tool, args, { allowFailure: true, timeoutMs: 60_000 });
      if (result.status !== 0) throw loadError(`${tool} rejected the ruleset`, result.stderr);
    });
  }
}

async function loadOne(backend: ApplyBackend, file: { suffix: string; content: string }): Promise<void> {
  await withFile(file.content, async (path) => {
    const [tool, args] = loadCommand(backend, file.suffix, path);
    const result = await runCommand(tool, args, { allowFailure: true, timeoutMs: 60_000 });
    if (result.status !== 0) throw loadError(`${tool} could not load the ruleset`, result.stderr);
  });
}

/**
 * Loads a ruleset; each file is one kernel transaction. When a later file fails (ip6tables after
 * iptables), the earlier ones are put back from `previous`, so the result is all old or all new.
 */
export async function loadRuleset(ruleset: RulesetFiles, previous: RulesetFiles): Promise<void> {
  const done: string[] = [];
  try {
    for (const file of ruleset.files) {
      await loadOne(ruleset.backend, file);
      done.push(file.suffix);
    }
  } catch (error) {
    for (const suffix of done) {
      const old = previous.files.find((f) => f.suffix === suffix);
      if (old) await loadOne(previous.backend, old);
    }
    throw error;
  }
}

/** portwarden's part of the live ruleset in the kernel's own normalized listing. */
export async function listCurrent(
  backend: ApplyBackend,
  tablesBySuffix: Map<string, string[]>,
): Promise<string> {
  if (backend === 'nftables') return listNftTable();
  const parts: string[] = [];
  for (const [suffix, tables] of tablesBySuffix)
    parts.push(`# ${saveTool(suffix)}\n${await saveIptables(suffix, tables)}`);
  return parts.join('\n');
}

/**
 * The new ruleset as the kernel would list it once loaded: loaded in a throw-away network namespace
 * (`unshare -n`), listed and discarded, so a diff against listCurrent() compares like with like.
 */
export async function listAsLoaded(
  ruleset: RulesetFiles,
  tablesBySuffix: Map<string, string[]>,
): Promise<string> {
  const parts: string[] = [];
  for (const file of ruleset.files) {
    const text = await withFile(file.content, async (path) => {
      const script =
        ruleset.backend === 'nftables'
          ? `nft -f "$1" && nft list table ${NFT_TABLE.join(' ')}`
          : `${restoreTool(file.suffix)} "$1" && for t in ${(tablesBySuffix.get(file.suffix) ?? []).join(' ')}; do ${saveTool(file.suffix)} -t "$t"; done`;
      const result = await runCommand('unshare', ['-n', 'sh', '-c', script, 'sh', path], {
        allowFailure: true,
      });
      if (result.status !== 0) throw loadError('the new ruleset does not load', result.stderr);
      return result.stdout;
    });
    parts.push(
      ruleset.backend === 'nftables' ? text : `# ${saveTool(file.suffix)}\n${normalizeIptablesSave(text)}`,
    );
  }
  return parts.join('\n');
}

/** The files of a compilation as a RulesetFiles. */
export function fromCompiled(backend: ApplyBackend, compiled: readonly CompiledFile[]): RulesetFiles {
  return { backend, files: compiled.map((c) => ({ suffix: c.suffix, content: c.content })) };
}

/** Which tables each iptables file writes (empty map for nftables). */
export function tablesOf(ruleset: RulesetFiles): Map<string, string[]> {
  const map = new Map<string, string[]>();
  if (ruleset.backend === 'iptables')
    for (const f of ruleset.files) map.set(f.suffix, iptablesTables(f.content));
  return map;
}

/** A ruleset for a lab namespace: the files, and the systemd units they name (`socket cgroupv2` / `-m cgroup`). */
export interface LabRuleset extends RulesetFiles {
  units: readonly string[];
}

/** Runs a command inside the namespace the ruleset goes into. */
export type NamespaceExec = (argv: readonly string[]) => Promise<unknown>;

/**
 * Loads a ruleset into a namespace of its own (verify's lab), with the cgroups its rules name standing
 * in for the real ones: the files are written to `dir` and loaded in one go. Errors are TOOL_FAILED
 * from `exec` with the loader's stderr.
 */
export async function loadIntoNamespace(
  ruleset: LabRuleset,
  exec: NamespaceExec,
  dir: string,
): Promise<void> {
  const loads = ruleset.files.map((file) => {
    const path = join(dir, `ruleset${file.suffix}`);
    writeFileSync(path, file.content);
    return loadCommand(ruleset.backend, file.suffix, path).flat().join(' ');
  });
  if (ruleset.backend === 'nftables' || ruleset.units.length === 0) {
    // nft resolves `socket cgroupv2` paths itself under /sys/fs/cgroup: a tmpfs with the policy's
    // units stands in for it, in a private mount namespace.
    const dirs = ruleset.units.map((u) => `/sys/fs/cgroup/${u}`).join(' ') || '/sys/fs/cgroup/x';
    await exec([
      'unshare',
      '-m',
      'sh',
      '-c',
      `mount -t tmpfs pwcg /sys/fs/cgroup && mkdir -p ${dirs} && ${loads.join(' && ')}`,
    ]);
    return;
  }
  await loadInCgroupNamespace(exec, ruleset.units, loads, dir);
}

/**
 * The kernel resolves iptables' `-m cgroup --path` in the cgroup2 hierarchy, relative to the loader's
 * cgroup namespace: a temporary empty cgroup with the units below it, loaded from a cgroup namespace
 * rooted there, and all of it removed again.
 */
async function loadInCgroupNamespace(
  exec: NamespaceExec,
  units: readonly string[],
  loads: readonly string[],
  dir: string,
): Promise<void> {
  const mountDir = join(dir, 'cgroup2');
  const root = join(mountDir, `portwarden-verify-${process.pid}`);
  mkdirSync(mountDir, { recursive: true });
  await runCommand('mount', ['-t', 'cgroup2', 'none', mountDir]);
  try {
    await runCommand('mkdir', ['-p', ...units.map((u) => join(root, u))]);
    await exec([
      'sh',
      '-c',
      `echo $$ > ${root}/cgroup.procs && exec unshare -C sh -c '${loads.join(' && ')}'`,
    ]);
  } finally {
    const remove = [...units.flatMap((u) => [join(root, u), join(root, u.split('/')[0] ?? '')]), root];
    // deepest first: a cgroup can only be removed once its children are
    const ordered = [...new Set(remove)].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const d of ordered) await runCommand('rmdir', [d], { allowFailure: true });
    await runCommand('umount', [mountDir], { allowFailure: true });
  }
}
