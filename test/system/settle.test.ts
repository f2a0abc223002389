import { describe, expect, it } from 'vitest';
import { pause, settleOnce } from '../../src/system/settle.ts';

describe('settleOnce and pause (system/settle.ts)', () => {
  it('the first finish wins; cleanup runs once with it', async () => {
    const cleaned: string[] = [];
    const value = await settleOnce(
      { timeoutMs: 5000, onTimeout: () => 'timeout', cleanup: (v) => cleaned.push(v) },
      (finish) => {
        finish('first');
        finish('second');
        setTimeout(() => finish('late'), 5);
      },
    );
    await pause(20);
    expect(value).toBe('first');
    expect(cleaned).toEqual(['first']);
  });

  it('the timeout settles with onTimeout() when nothing finishes', async () => {
    const started = Date.now();
    expect(await settleOnce({ timeoutMs: 30, onTimeout: () => 'timeout' }, () => undefined)).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('an abort settles at once, and an already aborted signal before any work starts', async () => {
    const controller = new AbortController();
    let started = false;
    const waiting = settleOnce(
      { timeoutMs: 60_000, onTimeout: () => 'aborted', signal: controller.signal },
      () => (started = true),
    );
    controller.abort();
    expect(await waiting).toBe('aborted');
    expect(started).toBe(true);
    let startedAgain = false;
    const value = await settleOnce(
      { timeoutMs: 60_000, onTimeout: () => 'aborted', signal: controller.signal },
      () => (startedAgain = true),
    );
    expect([value, startedAgain]).toEqual(['aborted', false]);
  });

  it('pause ends early on abort and leaves no listener behind', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const waiting = pause(60_000, controller.signal);
    controller.abort();
    await waiting;
    expect(Date.now() - started).toBeLessThan(1000);
    const signal = new AbortController().signal;
    let added = 0;
    let removed = 0;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = (...args: Parameters<typeof add>) => (added++, add(...args));
    signal.removeEventListener = (...args: Parameters<typeof remove>) => (removed++, remove(...args));
    await pause(1, signal);
    expect([added, removed]).toEqual([1, 1]);
  });
});
