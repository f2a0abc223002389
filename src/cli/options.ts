import { PortwardenError } from '../errors.ts';

/**
 * A numeric flag, checked: a clear one-line error naming the flag and its range (exit 2), never a
 * silent clamp or NaN. `integer` demands a whole number.
 */
export function numberOption(
  name: string,
  value: string,
  range: { min: number; max: number; integer?: boolean },
): number {
  const n = value.trim() === '' ? Number.NaN : Number(value);
  const whole = range.integer === true;
  if (!Number.isFinite(n) || (whole && !Number.isInteger(n)) || n < range.min || n > range.max) {
    throw new PortwardenError(
      'OPTION_INVALID',
      `${name} "${value}" must be a ${whole ? 'whole ' : ''}number from ${range.min} to ${range.max}`,
      { hint: `e.g. ${name} ${Math.min(range.max, Math.max(range.min, 2))}` },
    );
  }
  return n;
}

/** The backends portwarden can load into a Linux kernel (verify, apply); pf and Windows only compile. */
export function kernelBackendOption(value: string, verb: string): 'nftables' | 'iptables' {
  if (value !== 'nftables' && value !== 'iptables') {
    throw new PortwardenError('OPTION_INVALID', `--backend "${value}" cannot be ${verb}`, {
      hint: 'use nftables or iptables (compile pf and Windows rulesets with `portwarden compile`)',
    });
  }
  return value;
}
