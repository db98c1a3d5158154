export { documentApprovalWorkflow } from './document-approval';
export { auditVerifyWorkflow } from './audit-verify';
export * from './scheduled-work';
export { capaWorkflow } from './capa';
