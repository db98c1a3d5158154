export { documentApprovalWorkflow } from './document-approval';
export { auditVerifyWorkflow } from './audit-verify';
export { sampleIntakeWorkflow, sampleBatchWorkflow } from './sample-intake';
export { erpSyncWorkflow } from './erp-sync';
export { supplierQualificationWorkflow } from './supplier-qualification';
export * from './scheduled-work';
export { capaWorkflow } from './capa';
export { soapSummaryWorkflow } from './soap-summary';
export { deliverEmailsWorkflow } from './deliver-emails';
