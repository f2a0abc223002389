import { describe, expect, it } from 'vitest';
import {
  missingCapabilities,
  parseCapabilityMask,
  unreadableReason,
  unreadableWarnings,
  type UnreadableProcess,
} from '../../src/inventory/unreadable.ts';

const proc = (over: Partial<UnreadableProcess> = {}): UnreadableProcess => ({
  pid: 42,
  name: 'sshd',
  uid: 0,
  vanished: false,
  code: 'EACCES',
  otherUserNamespace: false,
  missingCapabilities: [],
  hidepid: null,
  ...over,
});

describe('why a process could not be read', () => {
  it.each<[Partial<UnreadableProcess>, RegExp]>([
    [{ vanished: true }, /exited while being read/],
    [{ otherUserNamespace: true }, /another user namespace/],
    [{ missingCapabilities: [19, 24] }, /lacks \(CAP_SYS_PTRACE, CAP_SYS_RESOURCE\)/],
    [{ hidepid: 'invisible' }, /hidepid=invisible/],
    [{}, /EACCES \(a security module/],
  ])('%j', (over, reason) => {
    expect(unreadableReason(proc(over))).toMatch(reason);
  });

  it('reads capability masks from /proc/<pid>/status', () => {
    const status = 'Name:\tx\nCapPrm:\t000001ffffffffff\nCapEff:\t000001fffeffffff\n';
    const ours = parseCapabilityMask(status, 'CapEff');
    const theirs = parseCapabilityMask(status, 'CapPrm');
    expect(ours !== null && theirs !== null && missingCapabilities(ours, theirs)).toEqual([24]);
  });

  it('as root: names each process and its reason, never "run as root"', () => {
    const lines = unreadableWarnings(
      [proc({ missingCapabilities: [24] }), proc({ pid: 7, vanished: true })],
      true,
    );
    expect(lines).toEqual([
      'could not read pid 42 (sshd, uid 0): it holds capabilities this process lacks (CAP_SYS_RESOURCE); sockets only it holds show no process',
      'could not read pid 7 (sshd, uid 0): it exited while being read; sockets only it holds show no process',
    ]);
  });

  it("not root: other users' processes are summed up with the root hint", () => {
    const list = [1, 2, 3, 4].map((pid) => proc({ pid }));
    const [line = ''] = unreadableWarnings(list, false);
    expect(line).toMatch(
      /^4 processes of other users could not be inspected \(pid 1 \(sshd, uid 0\), .*, \.\.\.\)/,
    );
    expect(line).toMatch(/run as root to see every owner$/);
    expect(
      unreadableWarnings(
        Array.from({ length: 5 }, (_, i) => proc({ pid: i })),
        true,
      ),
    ).toHaveLength(4);
  });
});
