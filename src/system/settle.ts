/**
 * The shapes every socket wait in portwarden has: a promise settled exactly once — by an event, or by
 * a timeout — that leaves no timer or listener behind.
 */

export interface SettleOptions<T> {
  /** Settle with onTimeout() after this many milliseconds. */
  timeoutMs: number;
  onTimeout: () => T;
  /** Runs once with the settled value, before the promise resolves (close the socket, ...). */
  cleanup?: (value: T) => void;
  /** Settles with onTimeout() at once when this aborts. */
  signal?: AbortSignal;
}

/**
 * Starts work that reports through `finish`; the first call (or the timeout, or the abort) settles
 * the promise, clears the timer and runs `cleanup`; later calls are ignored.
 */
export function settleOnce<T>(
  options: SettleOptions<T>,
  start: (finish: (value: T) => void) => void,
): Promise<T> {
  return new Promise((resolve) => {
    let settled = false;
    const onAbort = (): void => finish(options.onTimeout());
    const finish = (value: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      options.cleanup?.(value);
      resolve(value);
    };
    const timer = setTimeout(onAbort, options.timeoutMs);
    if (options.signal?.aborted) return finish(options.onTimeout());
    options.signal?.addEventListener('abort', onAbort, { once: true });
    start(finish);
  });
}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no timer or listener behind. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return settleOnce(
    { timeoutMs: ms, onTimeout: () => undefined, ...(signal ? { signal } : {}) },
    () => undefined,
  );
}
