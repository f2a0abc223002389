import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { registerExplain } from './explain.ts';
import { registerPorts } from './ports.ts';
import { registerCompile } from './compile.ts';
import { registerPolicy } from './policy.ts';
import { registerAudit } from './audit.ts';
import { registerTrace } from './trace.ts';
import { registerScan } from './scan.ts';
import { registerVerify } from './verify.ts';
import { registerApply } from './apply.ts';
import { registerStatus } from './status.ts';
import { registerWatch } from './watch.ts';
import { registerServe } from './serve.ts';
import { registerCompletion } from './completion.ts';
import { registerMan } from './man.ts';
import { registerPrograms } from './programs.ts';
import { registerAgent } from './agent.ts';
import { registerFleet } from './fleet.ts';
import { registerScanWorker } from './scan-queue.ts';

/** Every CLI verb; each registers itself on the program. Add new verbs here. */
export const COMMANDS: readonly ((program: Command, ctx: CliContext) => void)[] = [
  registerExplain,
  registerPorts,
  registerCompile,
  registerPolicy,
  registerAudit,
  registerTrace,
  registerScan,
  registerVerify,
  registerApply,
  registerStatus,
  registerWatch,
  registerServe,
  registerCompletion,
  registerMan,
  registerPrograms,
  registerAgent,
  registerFleet,
  registerScanWorker,
];
