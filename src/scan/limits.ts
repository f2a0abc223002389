/** Above this many addresses a scan needs `allowLarge` (the CLI's --yes): nobody scans a /8 by accident. */
export const CONFIRM_OVER = 65_536n;
