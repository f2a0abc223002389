import { z } from 'zod';

/** What happens to traffic no rule allows. */
export const VERDICTS = ['drop', 'reject', 'accept'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** A list written as a YAML list or as one comma-separated string (`allow: ftp, http`). */
const specList = z.union([
  z.string().min(1),
  z.number().int(),
  z.array(z.union([z.string().min(1), z.number().int()])).min(1),
]);
const addressList = z.array(z.string().min(1)).min(1);
/**
 * Identifiers end up in rulesets of every target (chain and set names, interface, user and cgroup
 * matches), so each field admits only what every target can name — never quotes, spaces or controls.
 */
const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
const zoneName = z.string().regex(NAME, 'not a zone name');
const INTERFACE = /^[A-Za-z0-9_.:@-]{1,15}\*?$|^[A-Za-z0-9_.:@-]{0,14}\*$/;
/** POSIX portable user names (as useradd accepts them), or a numeric uid. */
const USER = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}|\d{1,10})$/;
/** A systemd unit directly under system.slice: name characters and a unit type, no `\` escapes. */
const UNIT = /^[A-Za-z0-9_][A-Za-z0-9:_.@-]{0,200}\.(?:service|scope|slice|socket|mount|swap)$/;
/** A label: letters and digits in any script, a few separators, one line. */
const LABEL = /^[\p{L}\p{N}][\p{L}\p{N} _.,:()+@/-]{0,63}$/u;

/** The diagnostic hint for each identifier field that failed its pattern, by key. */
export const IDENTIFIER_HINTS: Readonly<Record<string, string>> = {
  name: 'a policy name is up to 64 letters, digits, spaces and _ . , : ( ) + @ / -',
  zones: 'zone names are letters, digits, "_" and "-" (max 32), starting with a letter',
  zone: 'name a zone of this policy (letters, digits, "_" and "-")',
  from: 'name a zone of this policy (letters, digits, "_" and "-")',
  to: 'name a zone of this policy (letters, digits, "_" and "-")',
  interfaces: 'an interface name is up to 15 of A-Z a-z 0-9 _ . : @ -, optionally ending in * (eth*)',
  user: 'a user name as useradd accepts it (letters, digits, _ . -, max 32) or a numeric uid',
  unit: 'a systemd unit name like backup.service (letters, digits, : _ . @ -, no \\ escapes)',
};

const inboundRule = z.strictObject({
  allow: specList,
  from: addressList.optional(),
  comment: z.string().optional(),
  log: z.boolean().optional(),
});

const outboundRule = z.strictObject({
  allow: specList,
  to: addressList.optional(),
  comment: z.string().optional(),
  log: z.boolean().optional(),
});

const zone = z.strictObject({
  interfaces: z.array(z.string().regex(INTERFACE, 'not an interface name')).min(1),
  sources: addressList.optional(),
  exposure: z.enum(['external', 'internal']).optional(),
  inbound: z.array(inboundRule).optional(),
  outbound: z.array(outboundRule).optional(),
  ftp: z.strictObject({ passive: z.string().min(1) }).optional(),
});

const forward = z.strictObject({
  zone: zoneName,
  listen: z.string().min(1),
  to: z.string().min(1),
  from: addressList.optional(),
  comment: z.string().optional(),
});

const route = z.strictObject({
  from: zoneName,
  to: zoneName,
  allow: specList,
  masquerade: z.boolean().optional(),
  comment: z.string().optional(),
});

const program = z.strictObject({
  unit: z.string().regex(UNIT, 'not a systemd unit name').optional(),
  user: z.string().regex(USER, 'not a user name or uid').optional(),
  path: z.string().min(1).optional(),
  outbound: z.array(outboundRule).min(1),
  comment: z.string().optional(),
});

/** The policy file, version 1. Unknown keys are errors, so typos never pass silently. */
export const policySchema = z.strictObject({
  version: z.literal(1),
  name: z.string().regex(LABEL, 'not a policy name').optional(),
  description: z.string().optional(),
  defaults: z
    .strictObject({
      inbound: z.enum(VERDICTS).optional(),
      outbound: z.enum(VERDICTS).optional(),
      forward: z.enum(VERDICTS).optional(),
      log: z.boolean().optional(),
    })
    .optional(),
  icmp: z.strictObject({ echo: z.boolean().optional() }).optional(),
  coexist: z.array(z.enum(['docker', 'libvirt'])).optional(),
  zones: z.record(zoneName, zone),
  forwards: z.array(forward).optional(),
  routing: z.array(route).optional(),
  programs: z.array(program).optional(),
});

export type PolicyDocument = z.infer<typeof policySchema>;

/** Every key the schema knows at each level, for "did you mean" on unknown keys. */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  root: Object.keys(policySchema.shape),
  defaults: ['inbound', 'outbound', 'forward', 'log'],
  icmp: ['echo'],
  zone: Object.keys(zone.shape),
  inbound: Object.keys(inboundRule.shape),
  outbound: Object.keys(outboundRule.shape),
  forward: Object.keys(forward.shape),
  route: Object.keys(route.shape),
  program: Object.keys(program.shape),
  ftp: ['passive'],
};

/** JSON Schema of the policy file, for editors (yaml-language-server). */
export function policyJsonSchema(): unknown {
  return z.toJSONSchema(policySchema, { target: 'draft-2020-12' });
}
