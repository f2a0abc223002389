import type { Feature } from '../../src/compile/backend.ts';

/**
 * One small policy per feature of the IR (src/compile/backend.ts): each uses its feature, so every
 * backend either compiles it — and the conformance suite checks what the output says — or refuses
 * it naming the feature.
 */
export const FEATURE_POLICIES: Readonly<Record<Feature, string>> = {
  ipv6: 'zones:\n  z:\n    interfaces: [eth0]\n    inbound:\n      - allow: tcp/2222\n',
  'ipv6-addresses':
    'zones:\n  z:\n    interfaces: [eth0]\n    inbound:\n      - allow: tcp/2222\n        from: [2001:db8:5::/64]\n',
  'port-forward':
    'zones:\n  z:\n    interfaces: [eth0]\nforwards:\n  - { zone: z, listen: tcp/2525, to: 198.51.100.5:25 }\n',
  masquerade:
    'zones:\n  a:\n    interfaces: [eth0]\n  b:\n    interfaces: [eth1]\nrouting:\n  - { from: b, to: a, allow: https, masquerade: true }\n',
  routing:
    'zones:\n  a:\n    interfaces: [eth0]\n  b:\n    interfaces: [eth1]\nrouting:\n  - { from: b, to: a, allow: https }\n',
  'program-unit':
    'zones:\n  z:\n    interfaces: [eth0]\nprograms:\n  - unit: backup.service\n    outbound: [{ allow: https }]\n',
  'program-user':
    'zones:\n  z:\n    interfaces: [eth0]\nprograms:\n  - user: nobody\n    outbound: [{ allow: https }]\n',
  'program-path':
    'zones:\n  z:\n    interfaces: [eth0]\nprograms:\n  - path: /usr/bin/curl\n    outbound: [{ allow: https }]\n',
  'ftp-helper': 'zones:\n  z:\n    interfaces: [eth0]\n    inbound:\n      - allow: ftp\n',
  'udp-forward':
    'zones:\n  z:\n    interfaces: [eth0]\nforwards:\n  - { zone: z, listen: udp/5353, to: 198.51.100.5:53 }\n',
  'loopback-forward':
    'zones:\n  z:\n    interfaces: [eth0]\nforwards:\n  - { zone: z, listen: tcp/8080, to: 127.0.0.1:3000 }\n',
};
