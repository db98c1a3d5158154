import type { Knex } from 'knex';
import type { Db } from './knex';
import * as foundation from './migrations/20261122000000_foundation';
import * as capa from './migrations/20261122050000_capa';
import * as erpSync from './migrations/20261122040000_erp_sync';
import * as genericSignatures from './migrations/20261122010000_generic_signatures';
import * as scheduledWork from './migrations/20261122030000_scheduled_work';
import * as sampleIntake from './migrations/20261122060000_sample_intake';
import * as patientsSummaries from './migrations/20261201010000_patients_summaries';
import * as erpIntegration from './migrations/20261201020000_erp_integration';
import * as summaryReviewComments from './migrations/20261201030000_summary_review_comments';
import * as codecSessions from './migrations/20261201040000_codec_sessions';
import * as auditSeals from './migrations/20261206010000_audit_seals';
import * as phiAccessEvents from './migrations/20261206020000_phi_access_events';
import * as actionGrants from './migrations/20261206030000_action_grants';
import * as signatureVoids from './migrations/20261206040000_signature_voids_and_record_protection';
import * as patientRecords from './migrations/20261206041000_patient_records';
import * as capaNumbersAsOwner from './migrations/20261206045000_capa_numbers_as_owner';
import * as sampleEventProof from './migrations/20261206050000_sample_event_proof';
import * as routingTemplates from './migrations/20261206060000_routing_templates';
import * as patientVersions from './migrations/20261206070000_patient_versions';
import * as credentials from './migrations/20261206081000_credentials';
import * as rateLimits from './migrations/20261206083000_rate_limits';
import * as domainEvents from './migrations/20261206090000_domain_events';
import * as phiAccessSampleExports from './migrations/20261206091000_phi_access_sample_exports';
import * as results from './migrations/20261206092000_results';
import * as phiAccessExportsAndTrails from './migrations/20261206100000_phi_access_exports_and_trails';
import * as resultReports from './migrations/20261206101000_result_reports';
import * as taskOverdueEvents from './migrations/20261206102000_task_overdue_events';
import * as notificationChannels from './migrations/20261206140000_notification_channels';
import * as instruments from './migrations/20261206150000_instruments';
import * as training from './migrations/20261206155000_training';
import * as coaExtractions from './migrations/20261206175500_coa_extractions';
import * as reports from './migrations/20261206172000_reports';
import * as instrumentSubmission from './migrations/20261207020000_instrument_submission';
import * as resultFlagsAndDeltas from './migrations/20261206171000_result_flags_and_deltas';
import * as autoverification from './migrations/20261206171100_autoverification';
import * as phiAccessAnalyses from './migrations/20261206171200_phi_access_analyses';
import * as bulkExports from './migrations/20261206173000_bulk_exports';
import * as competence from './migrations/20261206174000_competence';
import * as instrumentReservations from './migrations/20261206174100_instrument_reservations';
import * as instrumentBookings from './migrations/20261207030000_instrument_bookings';
import * as criticalCalls from './migrations/20261207010000_critical_calls';
import * as criticalCallWithdrawal from './migrations/20261207071000_critical_call_withdrawal';
import * as criticalCallStatePages from './migrations/20261207072000_critical_call_state_pages';
import * as criticalCallRetests from './migrations/20261207073000_critical_call_retests';
import * as reportOrderingProvider from './migrations/20261207091000_report_ordering_provider';
import * as documentPrechecks from './migrations/20261207050000_document_prechecks';
import * as coaAttemptsAndInspectionRecords from './migrations/20261207060000_coa_attempts_and_inspection_records';
import * as bulkExportExpiry from './migrations/20261207061000_bulk_export_expiry';

/** Migrations listed in code, so they run the same from source, from a bundle or from compiled output. */
const MIGRATIONS: Record<string, Knex.Migration> = {
  '20261122000000_foundation': foundation,
  '20261122050000_capa': capa,
  '20261122040000_erp_sync': erpSync,
  '20261122010000_generic_signatures': genericSignatures,
  '20261122030000_scheduled_work': scheduledWork,
  '20261122060000_sample_intake': sampleIntake,
  '20261201010000_patients_summaries': patientsSummaries,
  '20261201020000_erp_integration': erpIntegration,
  '20261201030000_summary_review_comments': summaryReviewComments,
  '20261201040000_codec_sessions': codecSessions,
  '20261206010000_audit_seals': auditSeals,
  '20261206020000_phi_access_events': phiAccessEvents,
  '20261206030000_action_grants': actionGrants,
  '20261206040000_signature_voids_and_record_protection': signatureVoids,
  '20261206041000_patient_records': patientRecords,
  '20261206045000_capa_numbers_as_owner': capaNumbersAsOwner,
  '20261206050000_sample_event_proof': sampleEventProof,
  '20261206060000_routing_templates': routingTemplates,
  '20261206070000_patient_versions': patientVersions,
  '20261206081000_credentials': credentials,
  '20261206083000_rate_limits': rateLimits,
  '20261206090000_domain_events': domainEvents,
  '20261206091000_phi_access_sample_exports': phiAccessSampleExports,
  '20261206092000_results': results,
  '20261206100000_phi_access_exports_and_trails': phiAccessExportsAndTrails,
  '20261206101000_result_reports': resultReports,
  '20261206102000_task_overdue_events': taskOverdueEvents,
  '20261206140000_notification_channels': notificationChannels,
  '20261206150000_instruments': instruments,
  '20261206155000_training': training,
  '20261206175500_coa_extractions': coaExtractions,
  '20261206172000_reports': reports,
  '20261206171000_result_flags_and_deltas': resultFlagsAndDeltas,
  '20261206171100_autoverification': autoverification,
  '20261206171200_phi_access_analyses': phiAccessAnalyses,
  '20261206173000_bulk_exports': bulkExports,
  '20261206174000_competence': competence,
  '20261206174100_instrument_reservations': instrumentReservations,
  '20261207030000_instrument_bookings': instrumentBookings,
  '20261207010000_critical_calls': criticalCalls,
  '20261207020000_instrument_submission': instrumentSubmission,
  '20261207050000_document_prechecks': documentPrechecks,
  '20261207060000_coa_attempts_and_inspection_records': coaAttemptsAndInspectionRecords,
  '20261207061000_bulk_export_expiry': bulkExportExpiry,
  '20261207071000_critical_call_withdrawal': criticalCallWithdrawal,
  '20261207072000_critical_call_state_pages': criticalCallStatePages,
  '20261207073000_critical_call_retests': criticalCallRetests,
  '20261207091000_report_ordering_provider': reportOrderingProvider,
};

const source: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name],
};

export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource: source })) as [number, string[]];
  return applied;
}
