/**
 * portwarden's public library API. Everything the CLI does is reachable from here.
 * @packageDocumentation
 */
export { PortwardenError, isPortwardenError, EXIT, exitCodeFor } from './errors.ts';
export type { ErrorCode, ErrorCategory, Diagnostic, Severity, SourceLocation } from './errors.ts';
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
