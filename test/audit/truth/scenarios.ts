import { writeScenarioFile, type Bridge, type HostContext, type Scenario } from './harness.ts';
import type { Listener, Protocol } from './cells.ts';

/**
 * The truth suite's scenarios: each ruleset is written the way the tool it models writes it (ufw is
 * the real binary). Hosts are eth0 198.51.100.1/25 2001:db8::1/64 and eth1 203.0.113.1/25
 * 2001:db8:1::1/64 (fe80::1 on both); the from-ranges the rules name are 198.51.100.0/26,
 * 203.0.113.0/26, 2001:db8::/120 and 2001:db8:1::/120, each peer holding one source inside and one
 * outside them (see harness.ts).
 */

type Load = (ctx: HostContext) => Promise<void>;

const tcp = (host: string, port: number, extra: Partial<Listener> = {}): Listener => ({
  proto: 'tcp',
  host,
  port,
  ...extra,
});
const udp = (host: string, port: number, extra: Partial<Listener> = {}): Listener => ({
  proto: 'udp',
  host,
  port,
  ...extra,
});
const published = (proto: Protocol, port: number): Listener => ({ proto, host: '*', port });

const lines = (...text: string[]): string => `${text.join('\n')}\n`;

function nft(text: string): Load {
  return async (ctx) => {
    await ctx.run(['nft', '-f', writeScenarioFile(ctx, 'ruleset.nft', text)]);
  };
}

/** iptables-restore input through the given binary (iptables-nft-restore, iptables-legacy-restore...). */
function restore(tool: string, text: string): Load {
  return async (ctx) => {
    await ctx.run([tool], text);
  };
}

function all(...loads: Load[]): Load {
  return async (ctx) => {
    for (const load of loads) await load(ctx);
  };
}

/**
 * The real ufw, over a private copy of /etc/ufw in a mount namespace (as test/audit/ufw.root.test.ts
 * does): the machine's own ufw configuration, firewall and sysctls are never touched.
 */
function ufw(commands: string[]): Load {
  return async (ctx) => {
    const dir = `${ctx.dir}/${ctx.ns}-ufw`;
    const script = [
      'set -e',
      `mkdir -p ${dir}`,
      `cp -a /etc/ufw ${dir}/ufw`,
      `cp /etc/default/ufw ${dir}/default-ufw`,
      `: > ${dir}/ufw/sysctl.conf`,
      `mount --bind ${dir}/ufw /etc/ufw`,
      `mount --bind ${dir}/default-ufw /etc/default/ufw`,
      // rules added while ufw is disabled only go to user.rules; enable then loads everything once
      ...commands.map((c) => `ufw ${c} >/dev/null`),
      'ufw --force enable >/dev/null',
    ].join('\n');
    await ctx.lab.exec(ctx.ns, ['unshare', '-m', 'sh', '-c', script], { timeoutMs: 60_000 });
  };
}

const UFW: Scenario = {
  name: 'ufw',
  title:
    'real ufw: default deny; allow 80/tcp but deny one source first; allow 5432 and 53/udp from CIDRs; limit ssh; allow in on eth1 8443; stock before-rules',
  tools: ['ufw', 'unshare', 'iptables-restore'],
  listeners: [
    tcp('::', 22),
    tcp('::', 80),
    tcp('0.0.0.0', 5432),
    tcp('::', 8443),
    tcp('0.0.0.0', 23),
    udp('0.0.0.0', 68),
    udp('::', 546, { v6only: true }),
    udp('::', 5353),
    udp('::', 53),
    tcp('127.0.0.1', 6379),
  ],
  // ufw's before-rules accept DHCP replies (--sport 67 --dport 68) and DHCPv6 (--sport 547 --dport 546)
  sports: [
    { proto: 'udp', port: 68, sport: 67 },
    { proto: 'udp', port: 546, sport: 547 },
  ],
  load: ufw([
    'allow 80/tcp',
    'allow from 198.51.100.0/26 to any port 5432 proto tcp',
    'limit ssh',
    'allow in on eth1 to any port 8443 proto tcp',
    'insert 1 deny from 198.51.100.100 to any port 80 proto tcp',
    'allow proto udp from 203.0.113.0/26 to any port 53',
  ]),
};

/** A zone's input chains; `target` is its last rule (default zones accept ICMP and fall through). */
const FIREWALLD_PRE = (zone: string, target = 'meta l4proto { icmp, ipv6-icmp } accept') => [
  `  chain filter_IN_${zone} {`,
  `    jump filter_IN_${zone}_pre`,
  `    jump filter_IN_${zone}_log`,
  `    jump filter_IN_${zone}_deny`,
  `    jump filter_IN_${zone}_allow`,
  `    jump filter_IN_${zone}_post`,
  `    ${target}`,
  '  }',
  `  chain filter_IN_${zone}_pre { }`,
  `  chain filter_IN_${zone}_log { }`,
  `  chain filter_IN_${zone}_deny { }`,
  `  chain filter_IN_${zone}_post { }`,
];

/** firewalld's nftables backend (1.x): public zone on eth0, internal on eth1, a rich rule for 5432. */
const FIREWALLD: Scenario = {
  name: 'firewalld',
  title:
    'firewalld nft layout: public (ssh, dhcpv6-client, cockpit) on eth0, internal (+8443, rich rule 5432) on eth1',
  tools: ['nft'],
  listeners: [
    tcp('::', 22),
    tcp('0.0.0.0', 9090),
    tcp('::', 8443),
    tcp('0.0.0.0', 5432),
    udp('::', 546, { v6only: true }),
    udp('0.0.0.0', 5353),
    tcp('0.0.0.0', 5900),
  ],
  // forward-port port=8081:proto=tcp:toport=80:toaddr=198.51.100.130 in the public zone, to a guest on virbr0
  published: [published('tcp', 8081)],
  bridges: [
    {
      name: 'virbr0',
      cidrs: ['198.51.100.129/26'],
      backends: [{ addresses: ['198.51.100.130'], listeners: ['tcp:0.0.0.0:80'] }],
      client: ['198.51.100.131'],
    },
  ],
  load: nft(
    lines(
      'table inet firewalld {',
      '  chain nat_PREROUTING {',
      '    type nat hook prerouting priority dstnat + 10; policy accept;',
      '    jump nat_PREROUTING_ZONES',
      '  }',
      '  chain nat_PREROUTING_ZONES {',
      '    iifname "eth1" goto nat_PRE_internal',
      '    goto nat_PRE_public',
      '  }',
      '  chain nat_PRE_public {',
      '    jump nat_PRE_public_pre',
      '    jump nat_PRE_public_log',
      '    jump nat_PRE_public_deny',
      '    jump nat_PRE_public_allow',
      '    jump nat_PRE_public_post',
      '  }',
      '  chain nat_PRE_public_pre { }',
      '  chain nat_PRE_public_log { }',
      '  chain nat_PRE_public_deny { }',
      '  chain nat_PRE_public_allow {',
      '    meta nfproto ipv4 tcp dport 8081 dnat ip to 198.51.100.130:80',
      '  }',
      '  chain nat_PRE_public_post { }',
      '  chain nat_PRE_internal { }',
      '  chain filter_FORWARD {',
      '    type filter hook forward priority filter + 10; policy accept;',
      '    ct state { established, related } accept',
      '    ct status dnat accept',
      '    iifname "lo" accept',
      '    ct state invalid drop',
      '    reject with icmpx admin-prohibited',
      '  }',
      '  chain filter_PREROUTING {',
      '    type filter hook prerouting priority filter + 10; policy accept;',
      '    icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept',
      '    meta nfproto ipv6 fib saddr . mark . iif oif missing drop',
      '  }',
      '  chain filter_INPUT {',
      '    type filter hook input priority filter + 10; policy accept;',
      '    ct state { established, related } accept',
      '    ct status dnat accept',
      '    iifname "lo" accept',
      '    ct state invalid drop',
      '    jump filter_INPUT_ZONES',
      '    reject with icmpx admin-prohibited',
      '  }',
      '  chain filter_OUTPUT {',
      '    type filter hook output priority filter + 10; policy accept;',
      '    ct state { established, related } accept',
      '    oifname "lo" accept',
      '  }',
      // source zones first: an ipset in the drop zone, a network in the trusted zone
      '  set blocklist {',
      '    type ipv4_addr',
      '    flags interval',
      '    elements = { 198.51.100.96/28 }',
      '  }',
      '  chain filter_INPUT_ZONES {',
      '    ip saddr @blocklist goto filter_IN_drop',
      '    ip saddr 203.0.113.0/26 goto filter_IN_trusted',
      '    iifname "eth1" goto filter_IN_internal',
      '    iifname "eth0" goto filter_IN_public',
      '    goto filter_IN_public',
      '  }',
      ...FIREWALLD_PRE('drop', 'drop'),
      '  chain filter_IN_drop_allow { }',
      ...FIREWALLD_PRE('trusted', 'accept'),
      '  chain filter_IN_trusted_allow { }',
      ...FIREWALLD_PRE('public'),
      '  chain filter_IN_public_allow {',
      '    tcp dport 22 ct state { new, untracked } accept',
      '    ip6 daddr fe80::/64 udp dport 546 ct state { new, untracked } accept',
      '    tcp dport 9090 ct state { new, untracked } accept',
      '  }',
      ...FIREWALLD_PRE('internal'),
      '  chain filter_IN_internal_allow {',
      '    tcp dport 22 ct state { new, untracked } accept',
      '    ip daddr 224.0.0.251 udp dport 5353 ct state { new, untracked } accept',
      '    ip6 daddr ff02::fb udp dport 5353 ct state { new, untracked } accept',
      '    ip6 daddr fe80::/64 udp dport 546 ct state { new, untracked } accept',
      '    tcp dport 9090 ct state { new, untracked } accept',
      '    tcp dport 8443 ct state { new, untracked } accept',
      '    ip saddr 203.0.113.0/26 tcp dport 5432 ct state { new, untracked } accept',
      '  }',
      '}',
    ),
  ),
};

/** dockerd's iptables-nft rules for `-p 8080:80` and `-p 203.0.113.1:8082:82`, DOCKER-USER limiting eth1. */
const DOCKER: Scenario = {
  name: 'docker',
  title:
    'Docker (iptables-nft): INPUT drop + ssh; -p 8080:80, -p 203.0.113.1:8082:82; DOCKER-USER limits eth1',
  tools: ['iptables-nft-restore'],
  listeners: [
    tcp('0.0.0.0', 22),
    // docker-proxy holds the published ports on the host, one socket per family
    tcp('0.0.0.0', 8080),
    tcp('::', 8080, { v6only: true }),
    tcp('203.0.113.1', 8082),
    tcp('::', 9000),
  ],
  bridges: [
    {
      name: 'docker0',
      cidrs: ['198.51.100.129/26'],
      backends: [{ addresses: ['198.51.100.130'], listeners: ['tcp:0.0.0.0:80', 'tcp:0.0.0.0:82'] }],
      client: ['198.51.100.131'],
    },
  ],
  load: restore(
    'iptables-nft-restore',
    lines(
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':DOCKER - [0:0]',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
      '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
      '-A POSTROUTING -s 198.51.100.128/26 ! -o docker0 -j MASQUERADE',
      '-A POSTROUTING -s 198.51.100.130/32 -d 198.51.100.130/32 -p tcp -m tcp --dport 80 -j MASQUERADE',
      '-A POSTROUTING -s 198.51.100.130/32 -d 198.51.100.130/32 -p tcp -m tcp --dport 82 -j MASQUERADE',
      '-A DOCKER -i docker0 -j RETURN',
      '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.51.100.130:80',
      '-A DOCKER -d 203.0.113.1/32 ! -i docker0 -p tcp -m tcp --dport 8082 -j DNAT --to-destination 198.51.100.130:82',
      'COMMIT',
      '*filter',
      ':INPUT DROP [0:0]',
      ':FORWARD DROP [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':DOCKER - [0:0]',
      ':DOCKER-ISOLATION-STAGE-1 - [0:0]',
      ':DOCKER-ISOLATION-STAGE-2 - [0:0]',
      ':DOCKER-USER - [0:0]',
      '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A INPUT -i lo -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      '-A FORWARD -j DOCKER-USER',
      '-A FORWARD -j DOCKER-ISOLATION-STAGE-1',
      '-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A FORWARD -o docker0 -j DOCKER',
      '-A FORWARD -i docker0 ! -o docker0 -j ACCEPT',
      '-A FORWARD -i docker0 -o docker0 -j ACCEPT',
      '-A DOCKER -d 198.51.100.130/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT',
      '-A DOCKER -d 198.51.100.130/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 82 -j ACCEPT',
      '-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2',
      '-A DOCKER-ISOLATION-STAGE-1 -j RETURN',
      '-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP',
      '-A DOCKER-ISOLATION-STAGE-2 -j RETURN',
      '-A DOCKER-USER -i eth1 ! -s 203.0.113.0/26 -j DROP',
      '-A DOCKER-USER -j RETURN',
      'COMMIT',
    ),
  ),
};

const PODS: Bridge = {
  name: 'cni0',
  cidrs: ['198.51.100.193/26'],
  backends: [
    { addresses: ['198.51.100.194'], listeners: ['tcp:0.0.0.0:80', 'udp:0.0.0.0:53'] },
    { addresses: ['198.51.100.195'], listeners: ['tcp:0.0.0.0:80'] },
  ],
  client: ['198.51.100.196'],
};

const DOCKER_CHAINS = [
  ':DOCKER - [0:0]',
  ':DOCKER-ISOLATION-STAGE-1 - [0:0]',
  ':DOCKER-ISOLATION-STAGE-2 - [0:0]',
  ':DOCKER-USER - [0:0]',
  '-A FORWARD -j DOCKER-USER',
  '-A FORWARD -j DOCKER-ISOLATION-STAGE-1',
  '-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  '-A FORWARD -o docker0 -j DOCKER',
  '-A FORWARD -i docker0 ! -o docker0 -j ACCEPT',
  '-A FORWARD -i docker0 -o docker0 -j ACCEPT',
  '-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2',
  '-A DOCKER-ISOLATION-STAGE-1 -j RETURN',
  '-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP',
  '-A DOCKER-ISOLATION-STAGE-2 -j RETURN',
  '-A DOCKER-USER -j RETURN',
];

/** dockerd 27 with `ip6tables: true` and an IPv6 network: `-p 8080:80` is DNATed in both families. */
const DOCKER_V6: Scenario = {
  name: 'docker-ipv6',
  title:
    'Docker 27 (ip6tables: true): -p 8080:80 to a dual-stack container, INPUT drop + ssh in both families',
  tools: ['iptables-nft-restore', 'ip6tables-nft-restore'],
  listeners: [tcp('::', 22), tcp('0.0.0.0', 8080), tcp('::', 8080, { v6only: true }), tcp('::', 9000)],
  bridges: [
    {
      name: 'docker0',
      cidrs: ['198.51.100.129/26', '2001:db8:2::1/64'],
      backends: [{ addresses: ['198.51.100.130', '2001:db8:2::2'], listeners: ['tcp:[::]:80'] }],
      client: ['198.51.100.131', '2001:db8:2::3'],
    },
  ],
  load: all(
    restore(
      'iptables-nft-restore',
      lines(
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':INPUT ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':POSTROUTING ACCEPT [0:0]',
        ':DOCKER - [0:0]',
        '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
        '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
        '-A POSTROUTING -s 198.51.100.128/26 ! -o docker0 -j MASQUERADE',
        '-A POSTROUTING -s 198.51.100.130/32 -d 198.51.100.130/32 -p tcp -m tcp --dport 80 -j MASQUERADE',
        '-A DOCKER -i docker0 -j RETURN',
        '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.51.100.130:80',
        'COMMIT',
        '*filter',
        ':INPUT DROP [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A INPUT -i lo -j ACCEPT',
        '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
        ...DOCKER_CHAINS,
        '-A DOCKER -d 198.51.100.130/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT',
        'COMMIT',
      ),
    ),
    restore(
      'ip6tables-nft-restore',
      lines(
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':INPUT ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':POSTROUTING ACCEPT [0:0]',
        ':DOCKER - [0:0]',
        '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
        '-A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j DOCKER',
        '-A POSTROUTING -s 2001:db8:2::/64 ! -o docker0 -j MASQUERADE',
        '-A POSTROUTING -s 2001:db8:2::2/128 -d 2001:db8:2::2/128 -p tcp -m tcp --dport 80 -j MASQUERADE',
        '-A DOCKER -i docker0 -j RETURN',
        '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [2001:db8:2::2]:80',
        'COMMIT',
        '*filter',
        ':INPUT DROP [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A INPUT -i lo -j ACCEPT',
        '-A INPUT -p ipv6-icmp -j ACCEPT',
        '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
        ...DOCKER_CHAINS,
        '-A DOCKER -d 2001:db8:2::2/128 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT',
        'COMMIT',
      ),
    ),
  ),
};

const SVC_WEB = 'KUBE-SVC-TCOU7JCQXEZGVUNU';
const EXT_WEB = 'KUBE-EXT-TCOU7JCQXEZGVUNU';
const SEP_WEB1 = 'KUBE-SEP-ZP3FB6NMPNCO4VBJ';
const SEP_WEB2 = 'KUBE-SEP-6E7XQMQ4RAYOWTTM';
const SVC_DNS = 'KUBE-SVC-ERIFXISQEP7F7OF4';
const EXT_DNS = 'KUBE-EXT-ERIFXISQEP7F7OF4';
const SEP_DNS = 'KUBE-SEP-IT2ZTR26TO4XFPTO';

/** kube-proxy (iptables mode, 1.28 layout): NodePorts 30080/tcp (two endpoints) and 30053/udp. */
const KUBE: Scenario = {
  name: 'kube-proxy',
  title: 'kube-proxy iptables mode: NodePort 30080/tcp (2 endpoints), 30053/udp, 30081 without endpoints',
  tools: ['iptables-nft-restore'],
  listeners: [tcp('0.0.0.0', 22), tcp('::', 10250), tcp('127.0.0.1', 10248)],
  published: [published('tcp', 30080), published('udp', 30053), published('tcp', 30081)],
  bridges: [PODS],
  load: restore(
    'iptables-nft-restore',
    lines(
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':KUBE-EXTERNAL-SERVICES - [0:0]',
      ':KUBE-FIREWALL - [0:0]',
      ':KUBE-FORWARD - [0:0]',
      ':KUBE-NODEPORTS - [0:0]',
      ':KUBE-PROXY-FIREWALL - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
      '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
      '-A INPUT -j KUBE-FIREWALL',
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
      '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A OUTPUT -j KUBE-FIREWALL',
      '-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/empty:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30081 -j REJECT --reject-with icmp-port-unreachable',
      '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      'COMMIT',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':KUBE-MARK-MASQ - [0:0]',
      ':KUBE-NODEPORTS - [0:0]',
      ':KUBE-POSTROUTING - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      ...[SVC_WEB, EXT_WEB, SEP_WEB1, SEP_WEB2, SVC_DNS, EXT_DNS, SEP_DNS].map((c) => `:${c} - [0:0]`),
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
      '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
      '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
      `-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j ${EXT_WEB}`,
      `-A KUBE-NODEPORTS -p udp -m comment --comment "kube-system/dns:dns" -m udp --dport 30053 -j ${EXT_DNS}`,
      `-A KUBE-SERVICES -d 203.0.113.240/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j ${SVC_WEB}`,
      `-A KUBE-SERVICES -d 203.0.113.241/32 -p udp -m comment --comment "kube-system/dns:dns cluster IP" -m udp --dport 53 -j ${SVC_DNS}`,
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
      `-A ${EXT_WEB} -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ`,
      `-A ${EXT_WEB} -j ${SVC_WEB}`,
      `-A ${EXT_DNS} -m comment --comment "masquerade traffic for kube-system/dns:dns external destinations" -j KUBE-MARK-MASQ`,
      `-A ${EXT_DNS} -j ${SVC_DNS}`,
      `-A ${SVC_WEB} ! -s 198.51.100.192/26 -d 203.0.113.240/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
      `-A ${SVC_WEB} -m comment --comment "default/web:http -> 198.51.100.194:80" -m statistic --mode random --probability 0.50000000000 -j ${SEP_WEB1}`,
      `-A ${SVC_WEB} -m comment --comment "default/web:http -> 198.51.100.195:80" -j ${SEP_WEB2}`,
      `-A ${SEP_WEB1} -s 198.51.100.194/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ`,
      `-A ${SEP_WEB1} -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 198.51.100.194:80`,
      `-A ${SEP_WEB2} -s 198.51.100.195/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ`,
      `-A ${SEP_WEB2} -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 198.51.100.195:80`,
      `-A ${SVC_DNS} ! -s 198.51.100.192/26 -d 203.0.113.241/32 -p udp -m comment --comment "kube-system/dns:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ`,
      `-A ${SVC_DNS} -m comment --comment "kube-system/dns:dns -> 198.51.100.194:53" -j ${SEP_DNS}`,
      `-A ${SEP_DNS} -s 198.51.100.194/32 -m comment --comment "kube-system/dns:dns" -j KUBE-MARK-MASQ`,
      `-A ${SEP_DNS} -p udp -m comment --comment "kube-system/dns:dns" -m udp -j DNAT --to-destination 198.51.100.194:53`,
      'COMMIT',
    ),
  ),
};

/**
 * kube-proxy's nftables mode (1.31 layout): NodePorts through a concatenated verdict map behind
 * `fib daddr type local`, endpoints chosen by `numgen random mod 2 vmap`, a NodePort without
 * endpoints rejected from the filter side.
 */
const KUBE_NFT: Scenario = {
  name: 'kube-proxy-nft',
  title:
    'kube-proxy nftables mode: service-nodeports vmap (30080/tcp two endpoints via numgen, 30053/udp), 30081 no endpoints',
  tools: ['nft'],
  listeners: [tcp('0.0.0.0', 22), tcp('::', 10250)],
  published: [published('tcp', 30080), published('udp', 30053), published('tcp', 30081)],
  bridges: [PODS],
  load: nft(
    lines(
      'table ip kube-proxy {',
      '  comment "rules for kube-proxy"',
      '  map service-ips {',
      '    type ipv4_addr . inet_proto . inet_service : verdict',
      '    elements = { 203.0.113.240 . tcp . 80 : goto service-TCOU7JCQ-default/web/tcp/http,',
      '                 203.0.113.241 . udp . 53 : goto service-ERIFXISQ-kube-system/dns/udp/dns }',
      '  }',
      '  map service-nodeports {',
      '    type inet_proto . inet_service : verdict',
      '    elements = { tcp . 30080 : goto external-TCOU7JCQ-default/web/tcp/http,',
      '                 udp . 30053 : goto external-ERIFXISQ-kube-system/dns/udp/dns }',
      '  }',
      '  map no-endpoint-nodeports {',
      '    type inet_proto . inet_service : verdict',
      '    elements = { tcp . 30081 : goto reject-chain }',
      '  }',
      '  chain reject-chain {',
      '    comment "helper for @no-endpoint-services / @no-endpoint-nodeports"',
      '    reject',
      '  }',
      '  chain filter-input {',
      '    type filter hook input priority -110; policy accept;',
      '    ct state new jump nodeport-endpoints-check',
      '  }',
      '  chain filter-forward {',
      '    type filter hook forward priority -110; policy accept;',
      '    ct state new jump endpoints-check',
      '  }',
      '  chain nodeport-endpoints-check {',
      '    ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports',
      '  }',
      '  chain endpoints-check { }',
      '  chain nat-prerouting {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      '    jump services',
      '  }',
      '  chain nat-output {',
      '    type nat hook output priority -100; policy accept;',
      '    jump services',
      '  }',
      '  chain nat-postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      '    jump masquerading',
      '  }',
      '  chain masquerading {',
      '    meta mark & 0x00004000 == 0x00000000 return',
      '    meta mark set meta mark ^ 0x00004000',
      '    masquerade fully-random',
      '  }',
      '  chain mark-for-masquerade {',
      '    meta mark set meta mark | 0x00004000',
      '  }',
      '  chain services {',
      '    ip daddr . meta l4proto . th dport vmap @service-ips',
      '    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
      '  }',
      '  chain external-TCOU7JCQ-default/web/tcp/http {',
      '    jump mark-for-masquerade',
      '    goto service-TCOU7JCQ-default/web/tcp/http',
      '  }',
      '  chain service-TCOU7JCQ-default/web/tcp/http {',
      '    ip daddr 203.0.113.240 tcp dport 80 ip saddr != 198.51.100.192/26 jump mark-for-masquerade',
      '    numgen random mod 2 vmap { 0 : goto endpoint-5OJB2KTY-default/web/tcp/http__198.51.100.194/80,',
      '                               1 : goto endpoint-WTPN4XU5-default/web/tcp/http__198.51.100.195/80 }',
      '  }',
      '  chain endpoint-5OJB2KTY-default/web/tcp/http__198.51.100.194/80 {',
      '    ip saddr 198.51.100.194 jump mark-for-masquerade',
      '    meta l4proto tcp dnat to 198.51.100.194:80',
      '  }',
      '  chain endpoint-WTPN4XU5-default/web/tcp/http__198.51.100.195/80 {',
      '    ip saddr 198.51.100.195 jump mark-for-masquerade',
      '    meta l4proto tcp dnat to 198.51.100.195:80',
      '  }',
      '  chain external-ERIFXISQ-kube-system/dns/udp/dns {',
      '    jump mark-for-masquerade',
      '    goto service-ERIFXISQ-kube-system/dns/udp/dns',
      '  }',
      '  chain service-ERIFXISQ-kube-system/dns/udp/dns {',
      '    ip daddr 203.0.113.241 udp dport 53 ip saddr != 198.51.100.192/26 jump mark-for-masquerade',
      '    numgen random mod 1 vmap { 0 : goto endpoint-IT2ZTR26-kube-system/dns/udp/dns__198.51.100.194/53 }',
      '  }',
      '  chain endpoint-IT2ZTR26-kube-system/dns/udp/dns__198.51.100.194/53 {',
      '    ip saddr 198.51.100.194 jump mark-for-masquerade',
      '    meta l4proto udp dnat to 198.51.100.194:53',
      '  }',
      '}',
    ),
  ),
};

/** iptables-persistent's rules.v4 / rules.v6, loaded into x_tables by the legacy restore tools. */
const LEGACY: Scenario = {
  name: 'iptables-legacy',
  title:
    'iptables-legacy-restore (rules.v4/rules.v6): INPUT DROP, ssh, 443 from /26, snmp on eth1, v6 8080 from /120',
  tools: ['iptables-legacy-restore', 'ip6tables-legacy-restore'],
  listeners: [
    tcp('::', 22),
    tcp('0.0.0.0', 443),
    tcp('0.0.0.0', 3306),
    udp('0.0.0.0', 161),
    tcp('::', 8080, { v6only: true }),
  ],
  load: all(
    restore(
      'iptables-legacy-restore',
      lines(
        '*filter',
        ':INPUT DROP [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A INPUT -i lo -j ACCEPT',
        '-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT',
        '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
        '-A INPUT -s 198.51.100.0/26 -p tcp -m tcp --dport 443 -j ACCEPT',
        '-A INPUT -i eth1 -p udp -m udp --dport 161 -j ACCEPT',
        'COMMIT',
      ),
    ),
    restore(
      'ip6tables-legacy-restore',
      lines(
        '*filter',
        ':INPUT DROP [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A INPUT -i lo -j ACCEPT',
        '-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT',
        '-A INPUT -p ipv6-icmp -j ACCEPT',
        '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
        '-A INPUT -s 2001:db8::/120 -p tcp -m tcp --dport 8080 -j ACCEPT',
        'COMMIT',
      ),
    ),
  ),
};

/** An nft firewall and legacy x_tables rules at once: a packet must pass both. */
const NFT_AND_LEGACY: Scenario = {
  name: 'nft+legacy',
  title:
    'nft input (drop; 22, 3306, 8080, 161 accepted) plus legacy x_tables dropping 3306, 8080 but /26, 161 on eth0',
  tools: ['nft', 'iptables-legacy-restore'],
  listeners: [
    tcp('::', 22),
    tcp('::', 3306),
    tcp('0.0.0.0', 8080),
    udp('0.0.0.0', 161),
    tcp('0.0.0.0', 9999),
  ],
  load: all(
    nft(
      lines(
        'table inet filter {',
        '  chain input {',
        '    type filter hook input priority filter; policy drop;',
        '    ct state established,related accept',
        '    iif "lo" accept',
        '    meta l4proto ipv6-icmp accept',
        '    tcp dport { 22, 3306, 8080 } accept',
        '    udp dport 161 accept',
        '  }',
        '}',
      ),
    ),
    restore(
      'iptables-legacy-restore',
      lines(
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A INPUT -p tcp -m tcp --dport 3306 -j DROP',
        '-A INPUT -s 198.51.100.0/26 -p tcp -m tcp --dport 8080 -j ACCEPT',
        '-A INPUT -p tcp -m tcp --dport 8080 -j DROP',
        '-A INPUT -i eth0 -p udp -m udp --dport 161 -j REJECT --reject-with icmp-port-unreachable',
        'COMMIT',
      ),
    ),
  ),
};

/**
 * fail2ban's two ways of banning: its nftables action (table inet f2b-table, a set per jail, a
 * reject rule at priority -1) for sshd, and iptables-multiport (an f2b-<jail> chain of REJECTs
 * ending in RETURN) for nginx. One source of each peer is banned, the other is not.
 */
const FAIL2BAN: Scenario = {
  name: 'fail2ban',
  title: 'fail2ban: nftables action for sshd (set, reject) and iptables-multiport f2b chain for 80,443',
  tools: ['nft', 'iptables-nft-restore'],
  listeners: [tcp('::', 22), tcp('::', 80), tcp('0.0.0.0', 443), tcp('0.0.0.0', 25)],
  load: all(
    nft(
      lines(
        'table inet filter {',
        '  chain input {',
        '    type filter hook input priority filter; policy drop;',
        '    ct state established,related accept',
        '    iif "lo" accept',
        '    meta l4proto { icmp, ipv6-icmp } accept',
        '    tcp dport { 22, 80, 443 } accept',
        '  }',
        '}',
        'table inet f2b-table {',
        '  set addr-set-sshd {',
        '    type ipv4_addr',
        '    elements = { 198.51.100.10, 203.0.113.10 }',
        '  }',
        '  set addr6-set-sshd {',
        '    type ipv6_addr',
        '    elements = { 2001:db8::10 }',
        '  }',
        '  chain f2b-chain {',
        '    type filter hook input priority -1; policy accept;',
        '    tcp dport { 22 } ip saddr @addr-set-sshd reject',
        '    tcp dport { 22 } ip6 saddr @addr6-set-sshd reject',
        '  }',
        '}',
      ),
    ),
    restore(
      'iptables-nft-restore',
      lines(
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':f2b-nginx-http-auth - [0:0]',
        '-A INPUT -p tcp -m multiport --dports 80,443 -j f2b-nginx-http-auth',
        '-A f2b-nginx-http-auth -s 198.51.100.100/32 -j REJECT --reject-with icmp-port-unreachable',
        '-A f2b-nginx-http-auth -s 203.0.113.10/32 -j DROP',
        '-A f2b-nginx-http-auth -j RETURN',
        'COMMIT',
      ),
    ),
  ),
};

const NETDEV: Scenario = {
  name: 'netdev-ingress',
  title:
    'netdev ingress on eth1 drops 8443/tcp and 203.0.113.100 to 5000/udp; inet ingress on eth0 drops one v6 source to 22; input drops 23',
  tools: ['nft'],
  listeners: [tcp('::', 8443), udp('0.0.0.0', 5000), tcp('::', 22), tcp('0.0.0.0', 23)],
  load: nft(
    lines(
      'table netdev edge {',
      '  chain ing {',
      '    type filter hook ingress device "eth1" priority 0; policy accept;',
      '    tcp dport 8443 drop',
      '    ip saddr 203.0.113.100 udp dport 5000 drop',
      '  }',
      '}',
      'table inet edge6 {',
      '  chain ing {',
      '    type filter hook ingress device "eth0" priority 0; policy accept;',
      '    ip6 saddr 2001:db8::1:10 tcp dport 22 drop',
      '  }',
      '}',
      'table inet filter {',
      '  chain input {',
      '    type filter hook input priority filter; policy accept;',
      '    tcp dport 23 drop',
      '  }',
      '}',
    ),
  ),
};

const OUTPUT_DROP: Scenario = {
  name: 'output-drop',
  title: "output hook: meta skuid 65534 tcp sport 8900 drop (the SYN-ACK of nobody's listener)",
  tools: ['nft', 'setpriv'],
  listeners: [
    tcp('0.0.0.0', 8900, { uid: 65534 }),
    udp('0.0.0.0', 8900, { uid: 65534 }),
    tcp('0.0.0.0', 8901, { uid: 65534 }),
    tcp('::', 8902),
    tcp('::', 8903),
  ],
  load: nft(
    lines(
      'table netdev out {',
      '  chain eg {',
      '    type filter hook egress device "eth1" priority 0; policy accept;',
      '    tcp sport 8903 drop',
      '  }',
      '}',
      'table inet f {',
      '  chain output {',
      '    type filter hook output priority filter; policy accept;',
      '    meta skuid 65534 tcp sport 8900 drop',
      '  }',
      '}',
    ),
  ),
};

const MULTI_ADDRESS: Scenario = {
  name: 'multi-address',
  title: 'eth1 holds 203.0.113.1 and .3 (2001:db8:1::1 and ::3): rules keyed on ip daddr',
  tools: ['nft'],
  listeners: [tcp('::', 8451), udp('0.0.0.0', 8452), tcp('0.0.0.0', 22), tcp('203.0.113.3', 8453)],
  extraAddresses: [
    { iface: 'eth1', address: '203.0.113.3' },
    { iface: 'eth1', address: '2001:db8:1::3' },
  ],
  load: nft(
    lines(
      'table inet filter {',
      '  chain input {',
      '    type filter hook input priority filter; policy drop;',
      '    ct state established,related accept',
      '    iif "lo" accept',
      '    meta l4proto ipv6-icmp accept',
      '    ip daddr 203.0.113.3 tcp dport 8451 accept',
      '    ip6 daddr 2001:db8:1::3 tcp dport 8451 accept',
      '    ip daddr 203.0.113.1 udp dport 8452 accept',
      '    tcp dport 22 accept',
      '  }',
      '}',
    ),
  ),
};

const WEAK_HOST: Scenario = {
  name: 'weak-host',
  title: "listeners bound to one interface's address, reached through the other interface",
  tools: ['nft'],
  listeners: [
    tcp('203.0.113.1', 8009),
    tcp('2001:db8:1::1', 8009),
    udp('203.0.113.1', 8010),
    tcp('198.51.100.1', 22),
  ],
  load: nft(
    lines(
      'table inet filter {',
      '  chain input {',
      '    type filter hook input priority filter; policy drop;',
      '    ct state established,related accept',
      '    iif "lo" accept',
      '    meta l4proto ipv6-icmp accept',
      '    iifname "eth0" tcp dport 8009 accept',
      '    udp dport 8010 accept',
      '    iifname "eth1" tcp dport 22 accept',
      '  }',
      '}',
    ),
  ),
};

/** The Arch wiki's "simple stateful firewall": a --syn guarded jump into TCP/UDP chains. */
const SYN_GUARD: Scenario = {
  name: 'syn-guard',
  title:
    'iptables-nft: -p tcp --syn --ctstate NEW -j TCP, source-restricted accepts; v6 with -m state and -m iprange',
  tools: ['iptables-nft-restore', 'ip6tables-nft-restore'],
  listeners: [tcp('::', 22), tcp('::', 80), udp('::', 53), tcp('0.0.0.0', 8080)],
  load: all(
    restore(
      'iptables-nft-restore',
      lines(
        '*filter',
        ':INPUT DROP [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':TCP - [0:0]',
        ':UDP - [0:0]',
        '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A INPUT -i lo -j ACCEPT',
        '-A INPUT -m conntrack --ctstate INVALID -j DROP',
        '-A INPUT -p icmp -m icmp --icmp-type 8 -m conntrack --ctstate NEW -j ACCEPT',
        '-A INPUT -p udp -m conntrack --ctstate NEW -j UDP',
        '-A INPUT -p tcp --syn -m conntrack --ctstate NEW -j TCP',
        '-A INPUT -p udp -j REJECT --reject-with icmp-port-unreachable',
        '-A INPUT -p tcp -j REJECT --reject-with tcp-reset',
        '-A INPUT -j REJECT --reject-with icmp-proto-unreachable',
        '-A TCP -s 198.51.100.0/26 -p tcp -m tcp --dport 22 -j ACCEPT',
        '-A TCP -s 203.0.113.0/26 -p tcp -m tcp --dport 22 -j ACCEPT',
        '-A TCP -p tcp -m tcp --dport 80 -j ACCEPT',
        '-A UDP -s 203.0.113.0/26 -p udp -m udp --dport 53 -j ACCEPT',
        'COMMIT',
      ),
    ),
    restore(
      'ip6tables-nft-restore',
      lines(
        '*filter',
        ':INPUT DROP [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':TCP - [0:0]',
        ':UDP - [0:0]',
        '-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT',
        '-A INPUT -i lo -j ACCEPT',
        '-A INPUT -p ipv6-icmp -j ACCEPT',
        '-A INPUT -p udp -m state --state NEW -j UDP',
        '-A INPUT -p tcp --syn -m state --state NEW -j TCP',
        '-A INPUT -p udp -j REJECT --reject-with icmp6-port-unreachable',
        '-A INPUT -p tcp -j REJECT --reject-with tcp-reset',
        '-A TCP -p tcp -m iprange --src-range 2001:db8::1-2001:db8::ff -m tcp --dport 22 -j ACCEPT',
        '-A TCP -p tcp -m tcp --dport 80 -j ACCEPT',
        '-A UDP -p udp -m iprange --src-range 2001:db8:1::1-2001:db8:1::ff -m udp --dport 53 -j ACCEPT',
        'COMMIT',
      ),
    ),
  ),
};

const SOURCE_PORT: Scenario = {
  name: 'source-port',
  title: 'iptables-nft: --sport 67 --dport 68 (DHCP) and --sport 20 --dport 1024:65535 (active FTP data)',
  tools: ['iptables-nft-restore'],
  listeners: [udp('0.0.0.0', 68), tcp('0.0.0.0', 40000), tcp('0.0.0.0', 22), udp('0.0.0.0', 69)],
  sports: [
    { proto: 'udp', port: 68, sport: 67 },
    { proto: 'tcp', port: 40000, sport: 20 },
  ],
  load: restore(
    'iptables-nft-restore',
    lines(
      '*filter',
      ':INPUT DROP [0:0]',
      ':FORWARD DROP [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A INPUT -i lo -j ACCEPT',
      '-A INPUT -p udp -m udp --sport 67 --dport 68 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --sport 20 --dport 1024:65535 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      'COMMIT',
    ),
  ),
};

/**
 * Hand-written nft across hooks: a raw prerouting chain (notrack, a mark, a source drop), two input
 * base chains where the first one's accept does not spare a packet the second one's drop, a
 * concatenated set and an interface verdict map.
 */
const NFT_HOOKS: Scenario = {
  name: 'nft-hooks',
  title:
    'nft: raw prerouting notrack/mark/drop, two input chains (priority 0 accepts, priority 10 drops), concatenation, iifname vmap',
  tools: ['nft'],
  listeners: [
    tcp('::', 7000),
    tcp('::', 7001),
    tcp('0.0.0.0', 7002),
    tcp('0.0.0.0', 7003),
    tcp('0.0.0.0', 7004),
    tcp('0.0.0.0', 7005),
    tcp('::', 7006),
    udp('::', 7007),
    tcp('0.0.0.0', 7008),
  ],
  load: nft(
    lines(
      'table inet raw {',
      '  chain pre {',
      '    type filter hook prerouting priority raw; policy accept;',
      '    iifname "eth1" tcp dport 7001 notrack',
      '    iifname "eth1" meta mark set 0x2',
      '    ip saddr 198.51.100.100 tcp dport 7004 drop',
      '  }',
      '}',
      'table inet first {',
      '  chain in {',
      '    type filter hook input priority filter; policy accept;',
      '    tcp dport { 7000, 7002 } accept',
      '  }',
      '}',
      'table inet second {',
      '  chain in {',
      '    type filter hook input priority filter + 10; policy drop;',
      '    ct state established,related accept',
      '    ct state untracked accept',
      '    iif "lo" accept',
      '    meta l4proto ipv6-icmp accept',
      '    tcp dport 7000 accept',
      '    meta mark 0x2 tcp dport 7003 accept',
      '    tcp dport 7004 accept',
      '    ip saddr . tcp dport { 198.51.100.0/26 . 7005, 203.0.113.0/26 . 7005 } accept',
      '    iifname vmap { "eth0" : jump from_eth0, "eth1" : jump from_eth1 }',
      '  }',
      '  chain from_eth0 {',
      '    tcp dport 7006 accept',
      '    udp dport 7007 accept',
      '  }',
      '  chain from_eth1 {',
      '    tcp dport 7008 accept',
      '  }',
      '}',
    ),
  ),
};

/** The strong host model in nft: a packet for an address of another interface is dropped. */
const STRONG_HOST: Scenario = {
  name: 'strong-host',
  title:
    'nft: fib daddr . iif type != { local, broadcast, multicast } drop (strong host model), input drops 23',
  tools: ['nft'],
  listeners: [tcp('::', 8000), tcp('203.0.113.1', 8001), udp('0.0.0.0', 8002), tcp('0.0.0.0', 23)],
  load: nft(
    lines(
      'table inet filter {',
      '  chain input {',
      '    type filter hook input priority filter; policy accept;',
      '    fib daddr . iif type != { local, broadcast, multicast } drop',
      '    tcp dport 23 drop',
      '  }',
      '}',
    ),
  ),
};

/**
 * A policy-drop input chain that forgets ICMPv6: neighbor discovery is dropped, so nothing answers
 * over IPv6 although the ports are accepted (the classic way to lose IPv6 to one's own firewall).
 */
const NDP_DROPPED: Scenario = {
  name: 'ndp-dropped',
  title: 'nft: input policy drop accepting 22/tcp and 53/udp but no ICMPv6 (neighbor discovery dropped)',
  tools: ['nft'],
  listeners: [tcp('::', 22), udp('::', 53)],
  load: nft(
    lines(
      'table inet filter {',
      '  chain input {',
      '    type filter hook input priority filter; policy drop;',
      '    ct state established,related accept',
      '    iif "lo" accept',
      '    tcp dport 22 accept',
      '    udp dport 53 accept',
      '  }',
      '}',
    ),
  ),
};

/** 20,000 filler addresses in the ban set: real blocklists are that large (see issue 14's speed goal). */
const FILLER = Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

/** The CrowdSec firewall bouncer's nftables layout: timeout sets of banned sources, dropped early. */
const CROWDSEC: Scenario = {
  name: 'crowdsec',
  title:
    'CrowdSec nftables bouncer: ip and ip6 tables, timeout sets (20,000 filler bans + one source per peer)',
  tools: ['nft'],
  listeners: [tcp('::', 22), tcp('0.0.0.0', 80), udp('::', 51820)],
  load: nft(
    lines(
      'table ip crowdsec {',
      '  set crowdsec-blacklists {',
      '    type ipv4_addr',
      '    flags timeout',
      `    elements = { 198.51.100.100 timeout 4h, 203.0.113.100 timeout 4h, ${FILLER.join(', ')} }`,
      '  }',
      '  chain crowdsec-chain {',
      '    type filter hook input priority filter - 10; policy accept;',
      '    ip saddr @crowdsec-blacklists drop',
      '  }',
      '}',
      'table ip6 crowdsec6 {',
      '  set crowdsec6-blacklists {',
      '    type ipv6_addr',
      '    flags timeout',
      '    elements = { 2001:db8::1:10 timeout 4h }',
      '  }',
      '  chain crowdsec6-chain {',
      '    type filter hook input priority filter - 10; policy accept;',
      '    ip6 saddr @crowdsec6-blacklists drop',
      '  }',
      '}',
      'table inet filter {',
      '  chain input {',
      '    type filter hook input priority filter; policy drop;',
      '    ct state established,related accept',
      '    iif "lo" accept',
      '    meta l4proto ipv6-icmp accept',
      '    tcp dport { 22, 80 } accept',
      '    udp dport 51820 accept',
      '  }',
      '}',
    ),
  ),
};

/**
 * Stateful matches a first connection from a fresh source meets: recent (ssh brute-force guard and a
 * port-knocking list the source is not on), connlimit, hashlimit and limit.
 */
const RATE_LIMITS: Scenario = {
  name: 'rate-limits',
  title:
    'iptables-nft: recent --update --hitcount, recent --rcheck (knock list), connlimit, hashlimit, limit',
  tools: ['iptables-nft-restore'],
  listeners: [
    tcp('0.0.0.0', 22),
    tcp('0.0.0.0', 80),
    tcp('0.0.0.0', 443),
    udp('0.0.0.0', 123),
    tcp('0.0.0.0', 3306),
  ],
  load: restore(
    'iptables-nft-restore',
    lines(
      '*filter',
      ':INPUT DROP [0:0]',
      ':FORWARD DROP [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A INPUT -i lo -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name SSH --mask 255.255.255.255 --rsource',
      '-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 60 --hitcount 4 --name SSH --mask 255.255.255.255 --rsource -j DROP',
      '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 80 -m connlimit --connlimit-above 20 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with tcp-reset',
      '-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 443 -m hashlimit --hashlimit-upto 50/min --hashlimit-burst 5 --hashlimit-mode srcip --hashlimit-name https -j ACCEPT',
      '-A INPUT -p udp -m udp --dport 123 -m limit --limit 10/sec --limit-burst 20 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 3306 -m recent --rcheck --seconds 3600 --name TRUSTED --mask 255.255.255.255 --rsource -j ACCEPT',
      'COMMIT',
    ),
  ),
};

/**
 * OpenWrt's fw4 (22.03+) as it writes `table inet fw4`: lan on the bridge br-lan (a NAS behind it),
 * wan on eth1 with DHCP renew, DHCPv6, ICMPv6 and a port forward; eth0 belongs to no zone. ct state
 * in a verdict map-free form, SYN rate limit jump, reject chains, MSS clamping in mangle_forward.
 */
const OPENWRT: Scenario = {
  name: 'openwrt-fw4',
  title:
    'OpenWrt fw4: lan=br-lan accepts, wan=eth1 allows DHCP renew/DHCPv6 and a port forward 8080 to the NAS; eth0 in no zone',
  tools: ['nft'],
  listeners: [
    tcp('::', 22),
    tcp('::', 80),
    udp('0.0.0.0', 68),
    udp('::', 546, { v6only: true }),
    udp('::', 53),
    tcp('0.0.0.0', 53),
  ],
  published: [published('tcp', 8080)],
  // syn_flood lets 25 SYNs a second through, all sources together; a blocked probe's SYN is sent
  // again after a second, so new probes keep to half of that
  probeRate: 12,
  bridges: [
    {
      name: 'br-lan',
      cidrs: ['198.51.100.129/26'],
      backends: [{ addresses: ['198.51.100.130'], listeners: ['tcp:0.0.0.0:80'] }],
      client: ['198.51.100.131'],
    },
  ],
  load: nft(
    lines(
      'table inet fw4 {',
      '  chain input {',
      '    type filter hook input priority filter; policy drop;',
      '    iifname "lo" accept comment "!fw4: Accept traffic from loopback"',
      '    ct state established,related accept comment "!fw4: Allow inbound established and related flows"',
      '    tcp flags syn / fin,syn,rst,ack jump syn_flood comment "!fw4: Rate limit TCP syn packets"',
      '    iifname "br-lan" jump input_lan comment "!fw4: Handle lan IPv4/IPv6 input traffic"',
      '    iifname "eth1" jump input_wan comment "!fw4: Handle wan IPv4/IPv6 input traffic"',
      '  }',
      '  chain forward {',
      '    type filter hook forward priority filter; policy drop;',
      '    ct state established,related accept comment "!fw4: Allow forwarded established and related flows"',
      '    iifname "br-lan" jump forward_lan comment "!fw4: Handle lan IPv4/IPv6 forward traffic"',
      '    iifname "eth1" jump forward_wan comment "!fw4: Handle wan IPv4/IPv6 forward traffic"',
      '    jump handle_reject',
      '  }',
      '  chain output {',
      '    type filter hook output priority filter; policy accept;',
      '    oifname "lo" accept comment "!fw4: Accept traffic towards loopback"',
      '    ct state established,related accept comment "!fw4: Allow outbound established and related flows"',
      '    oifname "br-lan" jump output_lan comment "!fw4: Handle lan IPv4/IPv6 output traffic"',
      '    oifname "eth1" jump output_wan comment "!fw4: Handle wan IPv4/IPv6 output traffic"',
      '  }',
      '  chain handle_reject {',
      '    meta l4proto tcp reject with tcp reset comment "!fw4: Reject TCP traffic"',
      '    reject comment "!fw4: Reject any other traffic"',
      '  }',
      '  chain syn_flood {',
      '    limit rate 25/second burst 50 packets return comment "!fw4: Accept SYN packets below rate-limit"',
      '    drop comment "!fw4: Drop excess packets"',
      '  }',
      '  chain input_lan {',
      '    jump accept_from_lan',
      '  }',
      '  chain output_lan {',
      '    jump accept_to_lan',
      '  }',
      '  chain forward_lan {',
      '    jump accept_to_wan comment "!fw4: Accept lan to wan forwarding"',
      '    jump accept_to_lan',
      '  }',
      '  chain accept_from_lan {',
      '    iifname "br-lan" counter accept comment "!fw4: accept lan IPv4/IPv6 traffic"',
      '  }',
      '  chain accept_to_lan {',
      '    oifname "br-lan" counter accept comment "!fw4: accept lan IPv4/IPv6 traffic"',
      '  }',
      '  chain input_wan {',
      '    meta nfproto ipv4 udp dport 68 counter accept comment "!fw4: Allow-DHCP-Renew"',
      '    icmp type echo-request counter accept comment "!fw4: Allow-Ping"',
      '    meta nfproto ipv4 meta l4proto igmp counter accept comment "!fw4: Allow-IGMP"',
      '    meta nfproto ipv6 udp dport 546 counter accept comment "!fw4: Allow-DHCPv6"',
      '    icmpv6 type { destination-unreachable, time-exceeded, echo-request, echo-reply, nd-router-solicit, nd-router-advert } limit rate 1000/second counter accept comment "!fw4: Allow-ICMPv6-Input"',
      '    icmpv6 type . icmpv6 code { packet-too-big . no-route, parameter-problem . no-route, nd-neighbor-solicit . no-route, nd-neighbor-advert . no-route, parameter-problem . admin-prohibited } limit rate 1000/second counter accept comment "!fw4: Allow-ICMPv6-Input"',
      '    ct status dnat accept comment "!fw4: Accept port redirections"',
      '    jump reject_from_wan',
      '  }',
      '  chain output_wan {',
      '    jump accept_to_wan',
      '  }',
      '  chain forward_wan {',
      '    meta l4proto esp counter jump accept_to_lan comment "!fw4: Allow-IPSec-ESP"',
      '    udp dport 500 counter jump accept_to_lan comment "!fw4: Allow-ISAKMP"',
      '    ct status dnat accept comment "!fw4: Accept port forwards"',
      '    jump reject_to_wan',
      '  }',
      '  chain accept_to_wan {',
      '    meta nfproto ipv4 oifname "eth1" ct state invalid counter drop comment "!fw4: Prevent NAT leakage"',
      '    oifname "eth1" counter accept comment "!fw4: accept wan IPv4/IPv6 traffic"',
      '  }',
      '  chain reject_from_wan {',
      '    iifname "eth1" counter jump handle_reject comment "!fw4: reject wan IPv4/IPv6 traffic"',
      '  }',
      '  chain reject_to_wan {',
      '    oifname "eth1" counter jump handle_reject comment "!fw4: reject wan IPv4/IPv6 traffic"',
      '  }',
      '  chain dstnat {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      '    iifname "eth1" jump dstnat_wan comment "!fw4: Handle wan IPv4/IPv6 dstnat traffic"',
      '  }',
      '  chain srcnat {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      '    oifname "eth1" jump srcnat_wan comment "!fw4: Handle wan IPv4/IPv6 srcnat traffic"',
      '  }',
      '  chain dstnat_wan {',
      '    meta nfproto ipv4 tcp dport 8080 counter dnat ip to 198.51.100.130:80 comment "!fw4: nas"',
      '  }',
      '  chain srcnat_wan {',
      '    meta nfproto ipv4 masquerade comment "!fw4: Masquerade IPv4 wan traffic"',
      '  }',
      '  chain raw_prerouting {',
      '    type filter hook prerouting priority raw; policy accept;',
      '  }',
      '  chain mangle_forward {',
      '    type filter hook forward priority mangle; policy accept;',
      '    iifname "eth1" tcp flags syn tcp option maxseg size set rt mtu comment "!fw4: Zone wan IPv4/IPv6 ingress MTU fixing"',
      '    oifname "eth1" tcp flags syn tcp option maxseg size set rt mtu comment "!fw4: Zone wan IPv4/IPv6 egress MTU fixing"',
      '  }',
      '}',
    ),
  ),
};

/**
 * The raw and mangle tables of the anti-DDoS guides: drops before conntrack (a source, a port), the
 * "new but not SYN", invalid and MSS filters in mangle PREROUTING, a mark set there and checked in
 * filter INPUT, and a drop in mangle INPUT.
 */
const RAW_MANGLE: Scenario = {
  name: 'raw-mangle',
  title:
    'iptables-nft raw/mangle: raw source and port drops, mangle invalid / !syn / tcpmss / mark, mangle INPUT drop',
  tools: ['iptables-nft-restore'],
  listeners: [tcp('0.0.0.0', 9200), tcp('::', 5601), udp('0.0.0.0', 161), tcp('0.0.0.0', 22)],
  load: restore(
    'iptables-nft-restore',
    lines(
      '*raw',
      ':PREROUTING ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      '-A PREROUTING -s 203.0.113.100/32 -j DROP',
      '-A PREROUTING -p tcp -m tcp --dport 9200 -j DROP',
      'COMMIT',
      '*mangle',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      '-A PREROUTING -m conntrack --ctstate INVALID -j DROP',
      '-A PREROUTING -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -m conntrack --ctstate NEW -j DROP',
      '-A PREROUTING -p tcp -m conntrack --ctstate NEW -m tcpmss ! --mss 536:65535 -j DROP',
      '-A PREROUTING -p tcp -m tcp --tcp-flags FIN,SYN FIN,SYN -j DROP',
      '-A PREROUTING -s 198.51.100.0/26 -p tcp -m tcp --dport 5601 -j MARK --set-xmark 0x10/0xffffffff',
      '-A INPUT -i eth0 -p udp -m udp --dport 161 -j DROP',
      'COMMIT',
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      '-A INPUT -p tcp -m tcp --dport 5601 -m mark ! --mark 0x10 -j REJECT --reject-with tcp-reset',
      'COMMIT',
    ),
  ),
};

export const SCENARIOS: readonly Scenario[] = [
  UFW,
  FIREWALLD,
  DOCKER,
  DOCKER_V6,
  KUBE,
  KUBE_NFT,
  LEGACY,
  NFT_AND_LEGACY,
  FAIL2BAN,
  NETDEV,
  OUTPUT_DROP,
  MULTI_ADDRESS,
  WEAK_HOST,
  SYN_GUARD,
  SOURCE_PORT,
  NFT_HOOKS,
  STRONG_HOST,
  NDP_DROPPED,
  CROWDSEC,
  RATE_LIMITS,
  RAW_MANGLE,
  OPENWRT,
];
