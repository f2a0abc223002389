import { obj, type NftChain, type Ruleset } from './ruleset.ts';

/** Who wrote which tables, and whether input is filtered at all. */
export interface RulesetSummary {
  loaded: boolean;
  inputChains: number;
  /** True when no input base chain drops or rejects anything: default accept. */
  inputDefaultAccept: boolean;
  tools: string[];
  tables: string[];
}

function dropsSomething(chain: NftChain): boolean {
  return (
    chain.policy === 'drop' ||
    chain.rules.some((r) =>
      r.expr.some((e) => {
        const key = Object.keys(obj(e) ?? {})[0] ?? '';
        const text = JSON.stringify(e);
        return ['drop', 'reject', 'jump', 'goto', 'vmap'].includes(key) || /"(DROP|REJECT)"/.test(text);
      }),
    )
  );
}

function toolsOf(ruleset: Ruleset): string[] {
  const names = ruleset.chains.map((c) => `${c.table}/${c.name}`).join(' ');
  const tools: string[] = [];
  if (/ufw6?-/.test(names)) tools.push('ufw');
  if (/DOCKER/.test(names)) tools.push('docker');
  if (/KUBE-/.test(names)) tools.push('kube-proxy');
  if (/f2b-/.test(names)) tools.push('fail2ban');
  if (ruleset.tables.some((t) => t.name === 'firewalld')) tools.push('firewalld');
  if (/LIBVIRT_/.test(names)) tools.push('libvirt');
  if (ruleset.tables.some((t) => t.name === 'portwarden')) tools.push('portwarden');
  if (ruleset.chains.some((c) => c.origin === 'legacy')) tools.push('iptables-legacy');
  const xtables = ['filter', 'nat', 'mangle', 'raw'];
  if (
    ruleset.tables.some(
      (t) => t.origin !== 'legacy' && (t.family === 'ip' || t.family === 'ip6') && xtables.includes(t.name),
    ) &&
    !tools.includes('ufw')
  )
    tools.push('iptables');
  return tools;
}

export function summarizeRuleset(ruleset: Ruleset): RulesetSummary {
  const input = ruleset.chains.filter(
    (c) => (c.hook === 'input' || c.hook === 'ingress' || c.hook === 'prerouting') && c.type !== 'nat',
  );
  return {
    loaded: ruleset.chains.some((c) => c.hook !== null),
    inputChains: ruleset.chains.filter((c) => c.hook === 'input' && c.type !== 'nat').length,
    inputDefaultAccept: !input.some(dropsSomething),
    tools: toolsOf(ruleset),
    tables: ruleset.tables.map(
      (t) => `${t.origin === 'legacy' ? 'iptables-legacy ' : ''}${t.family} ${t.name}`,
    ),
  };
}
