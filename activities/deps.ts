import type { Db } from '../db/knex';
import type { ErpSetup } from './erp-sync';
import type { Mailer } from './mailer';

export interface ActivityDeps {
  db: Db;
  mailer: Mailer;
  /** Links in notifications point here. */
  publicUrl: string;
  /** Host part of generated Message-IDs. */
  mailDomain: string;
  /** The ERP, when one is configured (ERP_URL); its absence turns the sync and supplier-status writes off. */
  erp?: ErpSetup;
}
