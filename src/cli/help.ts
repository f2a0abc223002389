import { EventEmitter } from 'node:events';
import type { Command } from 'commander';
import { NMAP_SPELLINGS } from './commands/scan.ts';

/**
 * Examples of every command, by command path, shown after its options by `--help`. One table, so
 * completion or a man page can be generated from the same definitions later.
 */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  explain: [
    'portwarden explain 111                # tcp/111 and udp/111 in full (up to 4 entries are)',
    'portwarden explain 6000-6069          # a table: ports that explain alike share one row',
    'portwarden explain 6000-6003 --long   # every port in full',
    'portwarden explain telnet udp/161 --json',
    'portwarden explain --risky            # what to look for first, as a table',
  ],
  ports: [
    'portwarden ports                     # listening TCP and bound UDP sockets, owners, exposure',
    'portwarden ports --exposed           # only what is reachable beyond loopback',
    'portwarden ports -a --json           # every socket and state, for scripts',
    "portwarden ports 8080                # who listens on 8080 (ss -tulnp 'sport = :8080', lsof -i :8080)",
    'portwarden ports -tulpn -e           # ss letters work; -e adds the executable path',
  ],
  trace: [
    "portwarden trace tcp 203.0.113.9 '->' eth0:22   # every chain and rule a new SSH connection meets",
    'portwarden trace udp 198.51.100.7 eth1:53 --json  # the same as JSON, the deciding rule included',
  ],
  compile: [
    'portwarden compile policy.yaml                     # nftables on stdout',
    'portwarden compile policy.yaml -t iptables -o rules   # rules.v4 and rules.v6',
  ],
  policy: ['portwarden policy init -o policy.yaml', 'portwarden policy check policy.yaml'],
  'policy check': [
    'portwarden policy check policy.yaml          # errors exit 2, warnings are printed',
    'portwarden policy check --strict -t pf -     # stdin; warnings (and what pf cannot express) exit 1',
  ],
  'policy schema': ['portwarden policy schema > policy.schema.json'],
  'policy init': [
    'portwarden policy init                       # print a starter policy for what listens now',
    'portwarden policy init -o policy.yaml --force',
  ],
  audit: [
    'portwarden audit                             # listeners and the live firewall, findings by severity',
    'portwarden audit policy.yaml --fail-on high  # exit 1 on high or critical findings (CI)',
    'portwarden audit -f html -o report.html',
  ],
  scan: [
    'portwarden scan 127.0.0.1                    # well-known ports and curated services, TCP connect',
    'portwarden scan 198.51.100.0/24 -p 22,80,443 -T4',
    'portwarden scan -sU -p 53,123,161 198.51.100.7',
    'portwarden scan -iL hosts.txt -p- -oX scan.xml',
    'portwarden scan 198.51.100.0/22 -p- --queue postgres://portwarden@db.example/portwarden   # shared by scan-workers',
  ],
  verify: [
    'sudo portwarden verify policy.yaml                      # compile, then probe in namespaces',
    'sudo portwarden verify policy.yaml --ruleset my.nft --ports 1-1024',
  ],
  apply: [
    'sudo portwarden apply policy.yaml --dry-run   # the ruleset and a diff, nothing changed',
    'sudo portwarden apply policy.yaml             # rolls back in 60 s unless confirmed',
  ],
  confirm: ['sudo portwarden confirm --persist'],
  rollback: ['sudo portwarden rollback'],
  status: ['portwarden status', 'portwarden status --json'],
  history: ['portwarden history'],
  persist: ['sudo portwarden persist --via unit'],
  unpersist: ['sudo portwarden unpersist'],
  watch: [
    'sudo portwarden watch --policy policy.yaml --syslog',
    'portwarden watch --samples 10 --interval 1 --json',
    'sudo portwarden watch --programs ask --policy policy.yaml   # programs ask before they connect out',
  ],
  ask: [
    'sudo portwarden ask                                  # each pending prompt on the terminal',
    'sudo portwarden ask --id 3 --answer allow-destination --json',
  ],
  programs: [
    'sudo portwarden programs            # per program: allowed, denied, first and last seen; decisions',
    'sudo portwarden programs --log --since 24 --json',
  ],
  'policy suggest': [
    'sudo portwarden policy suggest policy.yaml           # the policy with learned programs: rules, printed',
    'sudo portwarden policy suggest policy.yaml --write   # written back, comments kept',
  ],
  serve: [
    'portwarden serve --policy policy.yaml   # http://127.0.0.1:7780 with a token',
    'portwarden serve --db postgres://portwarden@localhost/portwarden   # fleet mode: /hosts, agents ingest',
  ],
  agent: [
    'sudo portwarden agent --server https://fleet.example --token-file /etc/portwarden/token --watch',
    'portwarden agent --server http://127.0.0.1:7780 --token-file token --once --json',
  ],
  fleet: ['portwarden fleet hosts --db postgres://portwarden@localhost/portwarden'],
  'fleet add-host': [
    'portwarden fleet add-host web-1 --group web --db postgres://portwarden@localhost/portwarden',
  ],
  'fleet remove-host': ['portwarden fleet remove-host web-1 --db postgres://portwarden@localhost/portwarden'],
  'fleet hosts': [
    'portwarden fleet hosts --group web --db postgres://portwarden@localhost/portwarden --json',
  ],
  'fleet exposing': ['portwarden fleet exposing tcp/23 --db postgres://portwarden@localhost/portwarden'],
  'fleet running': [
    'portwarden fleet running redis --address 0.0.0.0 --db postgres://portwarden@localhost/portwarden',
  ],
  'scan-worker': ['portwarden scan-worker --queue postgres://portwarden@db.example/portwarden'],
  'fleet changes': [
    'portwarden fleet changes --group web --since 2026-11-30 --db postgres://portwarden@localhost/portwarden',
  ],
  completion: [
    'portwarden completion bash > ~/.local/share/bash-completion/completions/portwarden',
    'portwarden completion zsh >> ~/.zshrc',
    'portwarden completion fish > ~/.config/fish/completions/portwarden.fish',
  ],
  man: ['portwarden man | man -l -', 'portwarden man > /usr/local/share/man/man1/portwarden.1'],
};

/** The exit codes every command shares, as README documents them. */
export const EXIT_MEANINGS: readonly (readonly [number, string])[] = [
  [0, 'ok'],
  [1, 'the check ran and found problems (audit findings at or above --fail-on, a verify mismatch)'],
  [2, 'bad input or usage (port specs, targets, YAML, flags)'],
  [3, 'environment: needs root, a missing tool or kernel feature, namespace setup failed'],
  [4, 'internal bug (PORTWARDEN_DEBUG=1 shows the stack)'],
];

/** What the spellings that map to nothing mean here. */
const ACCEPTED: Readonly<Record<string, string>> = {
  '-sT': '(accepted: TCP connect is the scan portwarden does)',
  '-Pn': '(accepted: portwarden does no host discovery)',
  '-n': '(accepted: portwarden does no reverse DNS)',
};

export function nmapSpellings(): string[] {
  const rows = Object.entries(NMAP_SPELLINGS).map(
    ([nmap, ours]) =>
      `  ${nmap.padEnd(20)}${ours.length > 0 ? ours.join(' ') : (ACCEPTED[nmap] ?? '(accepted)')}`,
  );
  return ['', "nmap's spellings are accepted (-T0..-T5 too):", ...rows];
}

function examplesText(path: string, lines: readonly string[]): string {
  return ['', 'Examples:', ...lines.map((l) => `  ${l}`), ...(path === 'scan' ? nmapSpellings() : [])].join(
    '\n',
  );
}

/** commander keeps addHelpText as 'afterHelp' listeners (Command is an EventEmitter at run time). */
function hasOwnHelpText(command: Command): boolean {
  return command instanceof EventEmitter && command.listenerCount('afterHelp') > 0;
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Adds examples to every command that has none of its own yet (a command file may write its own
 * with addHelpText), and the shared exit codes and a few first steps to the top-level help.
 */
export function addHelpTexts(program: Command): void {
  const visit = (command: Command): void => {
    const lines = EXAMPLES[commandPath(command)];
    if (lines && !hasOwnHelpText(command))
      command.addHelpText('after', examplesText(commandPath(command), lines));
    command.commands.forEach(visit);
  };
  program.commands.forEach(visit);
  program.addHelpText(
    'after',
    [
      '',
      'First steps:',
      '  portwarden ports --exposed      # what listens beyond loopback, and who',
      '  portwarden audit                # what is wrong with it, and how to fix it',
      '  portwarden explain 111          # what a port is and how risky',
      '',
      'Exit codes:',
      ...EXIT_MEANINGS.map(([code, meaning]) => `  ${code}  ${meaning}`),
      '',
      'Colour: --color=auto|always|never (auto honours NO_COLOR, FORCE_COLOR and TERM=dumb).',
      '`portwarden COMMAND --help` shows the options and examples of each command.',
    ].join('\n'),
  );
}
