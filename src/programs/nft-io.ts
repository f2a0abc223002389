import { runCommand } from '../system/run.ts';
import { attributeAttempts } from './attribute.ts';
import { GATE_TABLE, parseGateListing } from './gate.ts';
import type { GateIo } from './gatekeeper.ts';

/** The gate's I/O on this machine's (or this namespace's) kernel: nft for the table, /proc for owners. */
export function kernelGateIo(): GateIo {
  return {
    nft: async (script) => {
      if (script.length > 0) await runCommand('nft', ['-f', '-'], { input: script, timeoutMs: 10_000 });
    },
    list: async () =>
      parseGateListing(
        (await runCommand('nft', ['-j', 'list', 'table', 'inet', GATE_TABLE], { timeoutMs: 10_000 })).stdout,
      ),
    attribute: attributeAttempts,
  };
}
