/**
 * portwarden's public library API: explicit named exports, no barrels. The CLI is a thin layer over
 * these entry points (it parses flags, draws progress and writes files):
 * - scan: `scan(targets, options)` → hosts and summary for renderScanText / renderScanJson / renderScanXml
 * - verify: `verifyPolicy(policy, options)` proves a ruleset against its policy in namespaces (root)
 * - apply: `applyPolicy`, `dryRun`, `confirmPending`, `rollbackPending`, `applyStatus` (root)
 * - watch: `runWatch` with a `WatchStore` and alert sinks; serve: `buildServer` (the dashboard)
 * - inventory: `listSockets`; audit: `auditHost`; compile: `compilePolicy`; policy: `loadPolicy`
 * Library code never starts the public CLI: its subprocesses are private worker entries.
 * @packageDocumentation
 */
export { PortwardenError, isPortwardenError, EXIT, exitCodeFor } from './errors.ts';
export type { ErrorCode, ErrorCategory, Diagnostic, Severity, SourceLocation } from './errors.ts';
export { OWN_CODES, categoryOf } from './errors.ts';
export type { YamlCode } from './errors.ts';
export type {
  Protocol,
  RiskLevel,
  PortRange,
  ProtocolPortRange,
  PortRangeCategory,
  CuratedService,
} from './catalog/types.ts';
export { PROTOCOLS, RISK_LEVELS } from './catalog/types.ts';
export { rangeCategory, isValidPort, PORT_RANGES, MAX_PORT } from './catalog/ranges.ts';
export { lookupIana } from './catalog/iana.ts';
export type { IanaEntry } from './catalog/iana.ts';
export { curatedCatalog, findCuratedService, findCuratedByPort, findGroup } from './catalog/curated.ts';
export { resolveServiceName } from './catalog/resolve-name.ts';
export { parsePortSpec, parsePortSpecs } from './catalog/port-spec.ts';
export type { PortSpecOptions } from './catalog/port-spec.ts';
export {
  formatPortSet,
  describePortSet,
  portSetFromRanges,
  portSetHas,
  portSetSize,
  portSetRanges,
  unionPortSets,
  iteratePorts,
  mergeRanges,
  EMPTY_PORT_SET,
} from './catalog/port-set.ts';
export type { PortSet } from './catalog/port-set.ts';
export { explainPort, explainSpecs, riskyServices, compareRisk } from './catalog/explain.ts';
export type { PortExplanation } from './catalog/explain.ts';
export { listSockets, inventoryFromText } from './inventory/list.ts';
export type { ListSocketsOptions } from './inventory/list.ts';
export { matchesSocketFilter, type SocketFilter } from './inventory/filter.ts';
export { parseProcNet, decodeProcAddress, isListening } from './inventory/parse-proc-net.ts';
export { parseLsof, parseWindowsNetstat, parseTasklistCsv } from './inventory/parse-foreign.ts';
export { parseCgroup, parseSystemdSocketUnits } from './inventory/owners.ts';
export { exposureOf, fixFor, serviceOf } from './inventory/classify.ts';
export { localInterfaces } from './inventory/read-proc.ts';
export type {
  Socket,
  SocketOwner,
  RawSocket,
  Exposure,
  Inventory,
  LocalInterface,
  DualStackSource,
} from './inventory/types.ts';
export { loadPolicy, loadPolicyOrThrow } from './policy/load.ts';
export { parseCidr } from './catalog/address.ts';
export type { LoadResult } from './policy/load.ts';
export { policySchema, policyJsonSchema, VERDICTS } from './policy/schema.ts';
export { lintPolicy, LINT_RULES } from './policy/lint.ts';
export type { LintContext, LintRule } from './policy/lint.ts';
export { generateStarterPolicy } from './policy/init.ts';
export type { StarterListener } from './policy/init.ts';
export {
  expectedInbound,
  expectedOutbound,
  expectedRouted,
  expectedForwards,
  isZoneMember,
} from './policy/expect.ts';
export type {
  Policy,
  Zone,
  PolicyRule,
  Cidr,
  Forward,
  Route,
  ProgramRule,
  ProgramMatch,
  Verdict,
} from './policy/types.ts';
export { buildIr, irInterfaces } from './compile/ir.ts';
export type { Ir, IrRule, IrZoneChain, IrRoute, IrNat, IrProgramRule } from './compile/ir.ts';
export { BACKENDS, findBackend, compilePolicy } from './compile/registry.ts';
export { featuresUsed } from './compile/backend.ts';
export type { Backend, CompiledFile, Feature } from './compile/backend.ts';
export { logPrefix, parseLogPrefix } from './compile/log-prefix.ts';
export { auditHost, auditFromData } from './audit/run.ts';
export type { AuditReport, AuditData, AuditOptions, Profile } from './audit/run.ts';
export { FINDING_RULES, runFindingRules, SEVERITIES } from './audit/findings.ts';
export type { Finding, FindingRule, AuditInput } from './audit/findings.ts';
export { computeExposure, socketFamilies, ANYWHERE } from './audit/exposure.ts';
export type { ExposureRow, ExposureCell, Reach } from './audit/exposure.ts';
export { readReachability, readSocketsReachability, reachabilityOfData } from './audit/run.ts';
export { reachabilityFrom, reachabilityUnknown, withReachability } from './audit/reachability.ts';
export type { Reachability, ReachOf, ReachableSocket, ReachSource } from './audit/reachability.ts';
export { summarizeRuleset } from './ruleset/summarise.ts';
export { parseNftJson, parseIptablesSave, withLegacy } from './ruleset/parse.ts';
export {
  evaluate,
  evaluateInbound,
  evaluateOutbound,
  evaluateForward,
  evaluateSources,
  xtMatch,
} from './ruleset/path.ts';
export { findDnatRules } from './audit/published.ts';
export { traceProbe, parseTraceSpec, renderTrace } from './audit/trace.ts';
export type { Ruleset, Hook } from './ruleset/ruleset.ts';
export type { RulesetSummary } from './ruleset/summarise.ts';
export type { Packet, Decision, SourceOutcome, TraceStep } from './ruleset/path.ts';
export type { DnatRule } from './audit/published.ts';
export type { TraceReport } from './audit/trace.ts';
export { renderAuditText } from './audit/report-text.ts';
export { renderAuditSarif } from './audit/report-sarif.ts';
export { renderAuditHtml } from './audit/report-html.ts';
export { readLiveRuleset } from './ruleset/read-live.ts';
export { scanTcp, parseFdLimit } from './scan/engine.ts';
export type { ScanTcpOptions, HostResult, PortResult, TcpState } from './scan/engine.ts';
export {
  parseTarget,
  countTarget,
  expandSpec,
  streamTargets,
  parseTargetList,
  specContains,
} from './scan/targets.ts';
export type { TargetSpec, Resolver } from './scan/targets.ts';
export { connectProbe, classifyErrno } from './scan/tcp.ts';
export type { Connector, ProbeOutcome } from './scan/tcp.ts';
export { RttEstimator, CongestionWindow, RateLimiter, TEMPLATES } from './scan/timing.ts';
export type { TimingTemplate } from './scan/timing.ts';
export { renderScanText, renderScanJson, renderScanXml } from './scan/report.ts';
export type { ScanSummary } from './scan/report.ts';
export { scan, selectPorts, CONFIRM_OVER } from './scan/scan.ts';
export type { ScanOptions, ScanResult, PortSelection } from './scan/scan.ts';
export { scanTcpParallel } from './scan/parallel.ts';
export { defaultConnector, FAST_CONNECT } from './scan/tcp-fast.ts';
export { scanUdp, udpProbe } from './scan/udp.ts';
export type { UdpState, UdpPortResult, UdpScanOptions, UdpOutcome, UdpProber } from './scan/udp.ts';
export { UDP_PAYLOADS, payloadFor, snmpGet, parseSnmpSysDescr } from './scan/udp-payloads.ts';
export type { UdpPayload } from './scan/udp-payloads.ts';
export { detectService } from './scan/service-detect.ts';
export type { ServiceInfo } from './scan/service-detect.ts';
export { MATCH_RULES, matchService } from './scan/service-rules.ts';
export type { MatchRule, Match } from './scan/service-rules.ts';
export { verifyPolicy, checkVerifyTools } from './verify/run.ts';
export type { VerifyOptions, VerifyResult } from './verify/run.ts';
export { planLab, comparePorts } from './verify/plan.ts';
export type { LabZone, Difference } from './verify/plan.ts';
export { applyPolicy, dryRun, confirmPending, rollbackPending, policyHash } from './apply/apply.ts';
export type { ApplyOptions, ApplyResult, DryRunResult } from './apply/apply.ts';
export { applyStatus } from './apply/status.ts';
export type { ApplyStatus } from './apply/status.ts';
export { persistCurrent, unpersist, etcDir, DEFAULT_ETC_DIR } from './apply/persist.ts';
export type { PersistOptions } from './apply/persist.ts';
export { readHistory } from './apply/state.ts';
export { stateDir, DEFAULT_STATE_DIR } from './system/state-dir.ts';
export type { PendingApply, CurrentState, PersistedState, HistoryEntry } from './apply/state.ts';
export type { ApplyBackend, RulesetFiles } from './ruleset/load-live.ts';
export type { KernelPlan, KernelChange, ManagedSetting } from './apply/kernel-apply.ts';
export { requiredKernelSettings } from './apply/kernel-settings.ts';
export type { KernelSetting } from './apply/kernel-settings.ts';
export { runWatch } from './watch/daemon.ts';
export type { WatchOptions } from './watch/daemon.ts';
export { WatchStore } from './watch/store.ts';
export type { WatchStoreOptions, StoredEvent, ScanSummary as StoredScanSummary } from './watch/store.ts';
export { diffListeners } from './watch/events.ts';
export type { WatchEvent, EventKind } from './watch/events.ts';
export { listenersOf } from './inventory/listeners.ts';
export type { Listener } from './inventory/listeners.ts';
export { stdoutSink, syslogSink, webhookSink } from './watch/alerts.ts';
export type { AlertSink, WebhookOptions } from './watch/alerts.ts';
export { buildServer, isLoopback } from './serve/server.ts';
export type { ServeOptions, DashboardSources } from './serve/server.ts';
export { readAuditData } from './audit/run.ts';
export { verifyStatically, rulesetOfCompiled, staticQuestions, compareAnswers } from './verify/static.ts';
export type { Disagreement, Answer } from './verify/static.ts';
export { parseNftText } from './ruleset/nft-text.ts';
export { AUDIT_REPORTERS, findReporter } from './audit/reporters.ts';
export type { AuditReporter, ReportContext } from './audit/reporters.ts';
export { FleetStore, HISTORY_EVERY_MS } from './fleet/store.ts';
export type { FleetHost, FleetListenerRow, FleetEventRow, IngestResult } from './fleet/store.ts';
export { migrate, openPool, isPostgresUrl } from './fleet/db.ts';
export { listHosts, hostDetail, hostsExposing, hostsRunning, changesSince } from './fleet/queries.ts';
export { runAgent, uploadOutbox, snapshotFromAudit } from './fleet/agent.ts';
export { Outbox } from './fleet/outbox.ts';
export { ingestBatchSchema } from './fleet/schema.ts';
export type { IngestBatch, FleetSnapshot, FleetEvent, FleetListener, FleetFinding } from './fleet/schema.ts';
