/** Workflow IDs are business keys: the same key never starts a second run. */
export const workflowIds = {
  documentApproval: (documentNumber: string, version: number) => `document-approval:${documentNumber}:v${version}`,
  auditVerify: () => 'audit-verify',
  capa: (number: string) => `capa:${number}`,
  sampleIntake: (accession: string) => `sample-intake:${accession}`,
  erpSync: (scope: string) => `erp-sync:${scope}`,
  supplierQualification: (supplier: string) => `supplier-qualification:${supplier}`,
  analysis: (accession: string, test: string, retestNumber = 1) =>
    retestNumber > 1 ? `analysis:${accession}:${test}:${retestNumber}` : `analysis:${accession}:${test}`,
  report: (accession: string, version: number) => `report:${accession}:v${version}`,
  /** An analysis's first call; a later one (after a withdrawal or a confirmed call) ends `:call-<n>`. */
  criticalCall: (accession: string, test: string, retestNumber = 1, callNumber = 1) =>
    `critical-call:${accession}:${test}${retestNumber > 1 ? `:${retestNumber}` : ''}${callNumber > 1 ? `:call-${callNumber}` : ''}`,
  instrument: (code: string) => `instrument:${code}`,
  booking: (bookingId: string) => `booking:${bookingId}`,
  soapSummary: (patientId: string, notesHash: string) => `soap-summary:${patientId}:${notesHash}`,
  bulkExport: (exportId: string) => `bulk-export:${exportId}`,
};

export function parseWorkflowType(workflowId: string): string {
  return workflowId.split(':')[0];
}
