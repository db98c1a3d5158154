export { documentApprovalWorkflow } from './document-approval';
export { auditVerifyWorkflow } from './audit-verify';
