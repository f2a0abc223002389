import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePolicy } from '../compile/registry.ts';
import { PortwardenError } from '../errors.ts';
import { NetnsLab } from '../lab/netns.ts';
import { runCommand } from '../lab/run.ts';
import { expectedInbound, expectedOutbound } from '../policy/expect.ts';
import type { Policy } from '../policy/types.ts';
import { comparePorts, planLab, type Difference } from './plan.ts';

const BIN = fileURLToPath(new URL('../../bin/portwarden.js', import.meta.url));

export interface VerifyOptions {
  backend: 'nftables' | 'iptables';
  /** A ruleset the user wrote, checked against the policy instead of the compiled one. */
  rulesetText?: string;
  /** TCP ports to probe (default all 65,535). */
  ports: string;
  version: string;
  onStep?: (text: string) => void;
}

export interface VerifyResult {
  ok: boolean;
  differences: Difference[];
  probes: number;
  lab: { zone: string; interface: string; host: string[]; peer: string[] }[];
}

interface ScanJson {
  hosts: { ports: { port: number; state: string }[] }[];
}

async function scanFrom(
  lab: NetnsLab,
  ns: string,
  target: string,
  ports: string,
): Promise<Map<number, string>> {
  const result = await lab.exec(
    ns,
    [process.execPath, BIN, 'scan', target, '-p', ports, '--retries', '1', '--json', '--show-all'],
    { timeoutMs: 300_000 },
  );
  const json = JSON.parse(result.stdout) as ScanJson;
  return new Map(json.hosts[0]?.ports.map((p) => [p.port, p.state]));
}

/**
 * Proves a ruleset against its policy with real packets: a host namespace with the policy's
 * interface names and the ruleset loaded, a peer namespace per zone, a TCP scan from each peer to the
 * host (inbound) and from the host to each peer (egress), both families; each port's fate is compared
 * with what the policy itself allows. Every namespace and process is removed afterwards.
 */
export async function verifyPolicy(policy: Policy, options: VerifyOptions): Promise<VerifyResult> {
  if (process.getuid?.() !== 0) {
    throw new PortwardenError('NOT_ROOT', 'verify builds network namespaces and needs root', {
      hint: 'run it as root (e.g. sudo portwarden verify policy.yaml)',
    });
  }
  const plan = planLab(policy);
  const lab = new NetnsLab('vfy');
  const dir = mkdtempSync(join(tmpdir(), 'pw-verify-'));
  const differences: Difference[] = [];
  let probes = 0;
  try {
    const host = await lab.addNamespace('host');
    const peers = new Map<string, string>();
    for (const zone of plan) {
      const peer = await lab.addNamespace('peer');
      peers.set(zone.zone, peer);
      await lab.link({ ns: host, ifname: zone.hostIf }, { ns: peer, ifname: 'eth0' });
      await lab.addAddress(host, zone.hostIf, `${zone.v4.host}/${zone.v4.prefix}`);
      await lab.addAddress(host, zone.hostIf, `${zone.v6.host}/${zone.v6.prefix}`);
      await lab.addAddress(peer, 'eth0', `${zone.v4.peer}/${zone.v4.prefix}`);
      await lab.addAddress(peer, 'eth0', `${zone.v6.peer}/${zone.v6.prefix}`);
    }
    if (options.rulesetText !== undefined) {
      const file = join(dir, 'ruleset');
      writeFileSync(file, options.rulesetText);
      await lab.exec(host, options.backend === 'nftables' ? ['nft', '-f', file] : ['iptables-restore', file]);
    } else {
      for (const compiled of compilePolicy(policy, options.backend, options.version)) {
        const file = join(dir, `ruleset${compiled.suffix}`);
        writeFileSync(file, compiled.content);
        if (options.backend === 'nftables') {
          // A tmpfs stands in for /sys/fs/cgroup so per-unit rules resolve inside the lab.
          await lab.exec(host, [
            'unshare',
            '-m',
            'sh',
            '-c',
            `mount -t tmpfs pwcg /sys/fs/cgroup && mkdir -p ${
              policy.programs
                .filter((p) => p.match.kind === 'unit')
                .map((p) => `/sys/fs/cgroup/system.slice/${p.match.kind === 'unit' ? p.match.unit : ''}`)
                .join(' ') || '/sys/fs/cgroup/x'
            } && nft -f ${file}`,
          ]);
        } else {
          await lab.exec(host, [compiled.suffix === '.v6' ? 'ip6tables-restore' : 'iptables-restore', file]);
        }
      }
    }
    for (const zone of plan) {
      const peer = peers.get(zone.zone) ?? '';
      for (const family of [4, 6] as const) {
        const addr = family === 4 ? zone.v4 : zone.v6;
        options.onStep?.(`zone ${zone.zone}: IPv${family} inbound`);
        const inbound = await scanFrom(lab, peer, addr.host, options.ports);
        probes += inbound.size;
        differences.push(
          ...comparePorts(
            { zone: zone.zone, direction: 'inbound', family, protocol: 'tcp' },
            expectedInbound(policy, zone.zone, family, addr.peer),
            inbound,
          ),
        );
        options.onStep?.(`zone ${zone.zone}: IPv${family} outbound`);
        const outbound = await scanFrom(lab, host, addr.peer, options.ports);
        probes += outbound.size;
        differences.push(
          ...comparePorts(
            { zone: zone.zone, direction: 'outbound', family, protocol: 'tcp' },
            expectedOutbound(policy, zone.zone, family, addr.peer),
            outbound,
          ),
        );
      }
    }
    return {
      ok: differences.length === 0,
      differences,
      probes,
      lab: plan.map((z) => ({
        zone: z.zone,
        interface: z.hostIf,
        host: [z.v4.host, z.v6.host],
        peer: [z.v4.peer, z.v6.peer],
      })),
    };
  } finally {
    await lab.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Checks that the tools verify needs are present (exit 3 naming the missing one). */
export async function checkVerifyTools(backend: string): Promise<void> {
  for (const tool of ['ip', backend === 'nftables' ? 'nft' : 'iptables-restore']) {
    await runCommand('sh', ['-c', `command -v ${tool}`]).catch(() => {
      throw new PortwardenError('TOOL_MISSING', `verify needs "${tool}"`, {
        hint: `install it (Debian: apt-get install ${tool === 'ip' ? 'iproute2' : tool === 'nft' ? 'nftables' : 'iptables'})`,
      });
    });
  }
}
