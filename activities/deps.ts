import type { Db } from '../db/knex';
import type { Mailer } from './mailer';

export interface ActivityDeps {
  db: Db;
  mailer: Mailer;
  /** Links in notifications point here. */
  publicUrl: string;
  /** Host part of generated Message-IDs. */
  mailDomain: string;
}
