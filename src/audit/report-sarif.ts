import { FINDING_RULES, type Severity } from './findings.ts';
import type { AuditReport } from './run.ts';

const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
  info: 'note',
};

/** GitHub code scanning reads security-severity (0-10) to rank alerts. */
const SCORE: Record<Severity, string> = {
  critical: '9.5',
  high: '8.0',
  medium: '5.5',
  low: '3.0',
  info: '1.0',
};

/** SARIF 2.1.0: one run, the finding rules as tool.driver.rules, findings as results. */
export function renderAuditSarif(report: AuditReport, version: string): unknown {
  const artifact = report.policy?.file;
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'portwarden',
            version,
            informationUri: 'https://github.com/portwarden/portwarden',
            rules: FINDING_RULES.map((rule) => ({
              id: rule.id,
              name: rule.name,
              shortDescription: { text: rule.title },
              fullDescription: { text: rule.help },
              help: { text: rule.help },
              defaultConfiguration: { level: LEVEL[rule.severity] },
              properties: { tags: ['security', 'network'], 'security-severity': SCORE[rule.severity] },
            })),
          },
        },
        invocations: [{ executionSuccessful: true, endTimeUtc: report.generatedAt }],
        results: report.findings.map((f) => ({
          ruleId: f.rule,
          ruleIndex: FINDING_RULES.findIndex((r) => r.id === f.rule),
          level: LEVEL[f.severity],
          message: { text: `${f.message}. Fix: ${f.fix}` },
          locations: [
            {
              ...(artifact ? { physicalLocation: { artifactLocation: { uri: artifact } } } : {}),
              logicalLocations: [
                {
                  name: f.protocol ? `${f.protocol}/${f.port ?? ''}` : 'host',
                  fullyQualifiedName: `${report.host}/${f.address ?? '*'}/${f.protocol ?? 'host'}/${f.port ?? ''}`,
                  kind: 'resource',
                },
              ],
            },
          ],
          partialFingerprints: { portwardenFindingId: f.id },
          properties: { severity: f.severity, 'security-severity': SCORE[f.severity], evidence: f.evidence },
        })),
      },
    ],
  };
}
