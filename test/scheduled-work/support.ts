import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackupSettings } from '../../common/scheduled-work';

/** Backup settings for a test: fresh local and off-site directories, short heartbeat. */
export async function testBackupSettings(overrides: Partial<BackupSettings> = {}): Promise<BackupSettings> {
  const root = await mkdtemp(join(tmpdir(), 'labflow-backup-test-'));
  return {
    dir: join(root, 'local'),
    offsiteDir: join(root, 'offsite'),
    compression: 1,
    encryptionKeyFile: null,
    sizeBandPercent: 50,
    retention: { daily: 7, weekly: 4, monthly: 12 },
    timeZone: 'UTC',
    pgUser: null,
    heartbeatTimeout: '5s',
    ...overrides,
  };
}

export const uniqueSuffix = () => randomBytes(3).toString('hex');
