import { PortwardenError } from '../errors.ts';
import { runCommand } from './run.ts';

/** Debian packages of the tools portwarden runs, for the hint when one is missing. */
const PACKAGES: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  nft: 'nftables',
  'iptables-restore': 'iptables',
  'ip6tables-restore': 'iptables',
  python3: 'python3',
  flock: 'util-linux',
  unshare: 'util-linux',
};

/** Whether a command is on PATH. */
export async function hasTool(tool: string): Promise<boolean> {
  const found = await runCommand('sh', ['-c', 'command -v "$1"', 'sh', tool], { allowFailure: true });
  return found.status === 0;
}

/** The first of `tools` that is not on PATH, or undefined when all are. */
export async function missingTool(tools: readonly string[]): Promise<string | undefined> {
  for (const tool of tools) if (!(await hasTool(tool))) return tool;
  return undefined;
}

/** Throws TOOL_MISSING (exit 3) naming the first missing tool and the package that has it. */
export async function requireTools(who: string, tools: readonly string[]): Promise<void> {
  const tool = await missingTool(tools);
  if (tool === undefined) return;
  throw new PortwardenError('TOOL_MISSING', `${who} needs "${tool}"`, {
    hint: `install it (Debian: apt-get install ${PACKAGES[tool] ?? tool})`,
  });
}
