import { portSetHas } from '../catalog/port-set.ts';
import type { NetnsLab } from '../lab/netns.ts';
import { expectedInbound } from '../policy/expect.ts';
import type { Policy } from '../policy/types.ts';
import { LAB_WORKER, startServers } from './lab.ts';
import { labSide, type Difference, type LabZone } from './plan.ts';

/**
 * FTP stays a real session, passive and active, from each zone peer the policy lets reach tcp/21: the
 * conntrack helper must see a real control connection to open the data connection. A session either
 * completes (both connections carried data) or not.
 */
export async function verifyFtp(
  lab: NetnsLab,
  policy: Policy,
  plan: readonly LabZone[],
  host: string,
  peers: ReadonlyMap<string, string>,
): Promise<{ differences: Difference[]; sessions: number }> {
  const wanted = plan.flatMap((zone) =>
    ([4, 6] as const)
      .map((family) => ({ zone, family, a: labSide(zone, family) }))
      .filter(({ zone: z, family, a }) =>
        portSetHas(expectedInbound(policy, z.zone, family, a.peer), 'tcp', 21),
      ),
  );
  if (wanted.length === 0) return { differences: [], sessions: 0 };
  const passive = policy.zones.find((z) => z.ftpPassive !== null)?.ftpPassive ?? null;
  const range = passive ? `:${passive.from}-${passive.to}` : '';
  await startServers(lab, host, [
    ...new Set(wanted.map(({ family, a }) => `ftp:${family === 6 ? `[${a.host}]` : a.host}:21${range}`)),
  ]);
  const differences: Difference[] = [];
  for (const zone of plan) {
    const mine = wanted.filter((w) => w.zone === zone);
    if (mine.length === 0) continue;
    const result = await lab.exec(
      peers.get(zone.zone) ?? '',
      [process.execPath, LAB_WORKER, 'ftp-client', '21', ...mine.map((w) => w.a.host)],
      { timeoutMs: 60_000, allowFailure: true },
    );
    const sessions = parseSessions(result.stdout);
    for (const w of mine)
      for (const mode of ['passive', 'active'] as const) {
        if (sessions.some((x) => x.host === w.a.host && x.mode === mode && x.ok)) continue;
        differences.push({
          zone: zone.zone,
          direction: 'inbound',
          family: w.family,
          protocol: 'ftp',
          ports: mode,
          expected: 'pass',
          observed: 'block',
          peer: w.a.peer,
        });
      }
  }
  return { differences, sessions: wanted.length * 2 };
}

function parseSessions(stdout: string): { host: string; ok: boolean; mode: 'passive' | 'active' }[] {
  try {
    return JSON.parse(stdout) as { host: string; ok: boolean; mode: 'passive' | 'active' }[];
  } catch {
    return [];
  }
}
