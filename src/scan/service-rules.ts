/**
 * Service match rules — data, our own (nmap's probe file has its own licence). Each rule names the
 * service when its pattern matches a greeting or a probe's reply; capture groups fill product and
 * version. First match wins, so specific rules come before generic ones.
 */
export interface MatchRule {
  service: string;
  pattern: RegExp;
  product?: string;
  /** `$1`-style references into the pattern's groups. */
  version?: string;
  extraInfo?: string;
}

export const MATCH_RULES: readonly MatchRule[] = [
  {
    service: 'ssh',
    pattern: /^SSH-([\d.]+)-OpenSSH_([\w.]+)(?:\s+(.*))?\r?\n/,
    product: 'OpenSSH',
    version: '$2',
    extraInfo: '$3',
  },
  { service: 'ssh', pattern: /^SSH-([\d.]+)-dropbear_([\w.]+)/, product: 'Dropbear sshd', version: '$2' },
  { service: 'ssh', pattern: /^SSH-([\d.]+)-([^\s\r\n]+)/, product: '$2', version: '' },
  { service: 'ftp', pattern: /^220[ -].*vsFTPd ([\w.]+)/i, product: 'vsftpd', version: '$1' },
  { service: 'ftp', pattern: /^220[ -].*ProFTPD ([\w.]+)/i, product: 'ProFTPD', version: '$1' },
  { service: 'ftp', pattern: /^220[ -].*Pure-FTPd/i, product: 'Pure-FTPd' },
  {
    service: 'ftp',
    pattern: /^220[ -].*FileZilla Server(?: version)? ([\w.]+)/i,
    product: 'FileZilla ftpd',
    version: '$1',
  },
  { service: 'smtp', pattern: /^220[ -](\S+) ESMTP Postfix/, product: 'Postfix smtpd', extraInfo: '$1' },
  {
    service: 'smtp',
    pattern: /^220[ -](\S+) ESMTP Exim ([\w.]+)/,
    product: 'Exim smtpd',
    version: '$2',
    extraInfo: '$1',
  },
  { service: 'smtp', pattern: /^220[ -](\S+) .*ESMTP/, product: '', extraInfo: '$1' },
  { service: 'ftp', pattern: /^220[ -].*FTP/i },
  { service: 'smtp', pattern: /^220[ -].*SMTP/i },
  { service: 'pop3', pattern: /^\+OK Dovecot/, product: 'Dovecot pop3d' },
  { service: 'pop3', pattern: /^\+OK / },
  { service: 'imap', pattern: /^\* OK \[CAPABILITY[^\]]*\] Dovecot/, product: 'Dovecot imapd' },
  { service: 'imap', pattern: /^\* OK .*IMAP/i },
  { service: 'vnc', pattern: /^RFB (\d{3}\.\d{3})\n/, product: 'VNC', extraInfo: 'protocol $1' },
  { service: 'mysql', pattern: /^[\s\S]{4}\n(\d+\.\d+\.\d+[\w.-]*)\0/, product: 'MySQL', version: '$1' },
  {
    service: 'mysql',
    pattern: /^[\s\S]{4}\n(\d+\.\d+\.\d+-MariaDB[\w.-]*)\0/,
    product: 'MariaDB',
    version: '$1',
  },
  { service: 'redis', pattern: /redis_version:([\w.]+)/, product: 'Redis key-value store', version: '$1' },
  { service: 'redis', pattern: /^(?:\+PONG|-NOAUTH|-DENIED)/, product: 'Redis key-value store' },
  { service: 'memcached', pattern: /^VERSION ([\w.]+)\r\n/, product: 'Memcached', version: '$1' },
  { service: 'postgresql', pattern: /^[SN]$/, product: 'PostgreSQL DB' },
  {
    service: 'http',
    pattern: /^HTTP\/1\.[01] \d{3}[\s\S]*?\r\nServer: nginx\/?([\w.]*)/i,
    product: 'nginx',
    version: '$1',
  },
  {
    service: 'http',
    pattern: /^HTTP\/1\.[01] \d{3}[\s\S]*?\r\nServer: Apache\/?([\w.]*)(?: \(([^)]+)\))?/i,
    product: 'Apache httpd',
    version: '$1',
    extraInfo: '$2',
  },
  { service: 'http', pattern: /^HTTP\/1\.[01] \d{3}[\s\S]*?\r\nServer: ([^\r\n]+)/i, product: '$1' },
  { service: 'http', pattern: /^HTTP\/1\.[01] \d{3}/ },
];

export interface Match {
  service: string;
  product?: string;
  version?: string;
  extraInfo?: string;
}

function fill(template: string | undefined, groups: RegExpExecArray): string | undefined {
  if (template === undefined) return undefined;
  const value = template.replace(/\$(\d)/g, (_m, n: string) => groups[Number(n)] ?? '').trim();
  return value === '' ? undefined : value;
}

/** The first rule matching a reply, with product/version filled from its groups. */
export function matchService(reply: string): Match | null {
  for (const rule of MATCH_RULES) {
    const groups = rule.pattern.exec(reply);
    if (!groups) continue;
    const product = fill(rule.product, groups);
    const version = fill(rule.version, groups);
    const extraInfo = fill(rule.extraInfo, groups);
    return {
      service: rule.service,
      ...(product ? { product } : {}),
      ...(version ? { version } : {}),
      ...(extraInfo ? { extraInfo } : {}),
    };
  }
  return null;
}

/** The <title> of an HTML page, collapsed and bounded. */
export function htmlTitle(body: string): string | undefined {
  const title = /<title[^>]*>([^<]{0,200})<\/title>/i.exec(body)?.[1]?.replace(/\s+/g, ' ').trim();
  return title === '' ? undefined : title;
}
