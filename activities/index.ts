import { auditActivities } from './audit';
import { bulkExportActivities } from './bulk-export';
import { capaActivities } from './capa';
import { coaExtractionActivities } from './coa-extraction';
import type { ActivityDeps } from './deps';
import { documentActivities } from './documents';
import { documentPrecheckActivities } from './document-precheck';
import { equipmentActivities } from './equipment';
import { equipmentTimerActivities } from './equipment-timers';
import { erpSyncActivities } from './erp-sync';
import { incomingInspectionActivities } from './incoming-inspection';
import { noticeActivities } from './notices';
import { notificationActivities } from './notifications';
import { reportActivities } from './reports';
import { resultActivities } from './results';
import { resultRuleActivities } from './result-rules';
import { sampleIntakeActivities } from './sample-intake';
import { supplierQualificationActivities } from './supplier-qualification';
import { scheduledWorkActivities } from './scheduled-work';
import { soapSummaryActivities } from './soap-summary';
import { summaryHandOverActivities } from './summary-hand-over';
import { trainingActivities } from './training';
import { webhookDeliveryActivities } from './webhook-delivery';

export type { ActivityDeps } from './deps';
export type { DocRef } from './documents';
export type { TrainingRef } from './training';

/** Every activity labflow's workers run, with their dependencies injected. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...notificationActivities(deps),
    ...noticeActivities(deps),
    ...documentActivities(deps),
    ...auditActivities(deps),
    ...capaActivities(deps),
    ...sampleIntakeActivities(deps),
    ...resultActivities(deps),
    ...reportActivities(deps),
    ...resultRuleActivities(deps),
    ...equipmentActivities(deps),
    ...equipmentTimerActivities(deps),
    ...erpSyncActivities(deps),
    ...incomingInspectionActivities(deps),
    ...supplierQualificationActivities(deps),
    ...scheduledWorkActivities(deps),
    ...soapSummaryActivities(deps),
    ...coaExtractionActivities(deps),
    ...documentPrecheckActivities(deps),
    ...summaryHandOverActivities(deps),
    ...webhookDeliveryActivities(deps),
    ...trainingActivities(deps),
    ...bulkExportActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
