import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_KEYS, databaseUrls, loadConfig, userOf } from '../common/config';

// docker-compose.yml cannot be run on the development machines (no Docker engine), so this keeps it honest: it
// must agree with common/config.ts and with the files of the repository.

const root = join(__dirname, '..');

type Mount = string | { type?: string; source?: string; target?: string };

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  depends_on?: string[] | Record<string, unknown>;
  volumes?: Mount[];
}

interface ComposeFile {
  services?: Record<string, ComposeService>;
  volumes?: Record<string, unknown> | null;
}

interface Repository {
  configKeys: readonly string[];
  /** Relative to the directory of the compose file. */
  fileExists(path: string): boolean;
}

const repository: Repository = { configKeys: CONFIG_KEYS, fileExists: (path) => existsSync(join(root, path)) };

function readCompose(): ComposeFile {
  // Merge keys (<<: *anchor) are how compose shares the labflow environment between services.
  return parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as ComposeFile;
}

function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => [entry.split('=')[0], entry.includes('=') ? entry.slice(entry.indexOf('=') + 1) : '']));
  }
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, value === null ? '' : String(value)]));
}

function dependenciesOf(service: ComposeService): string[] {
  const deps = service.depends_on ?? [];
  return Array.isArray(deps) ? deps : Object.keys(deps);
}

function mountsOf(service: ComposeService): { type: 'volume' | 'bind'; source: string; target: string }[] {
  return (service.volumes ?? []).flatMap((mount) => {
    if (typeof mount !== 'string') {
      if (!mount.source || !mount.target) return [];
      return [{ type: mount.type === 'bind' ? ('bind' as const) : ('volume' as const), source: mount.source, target: mount.target }];
    }
    const [source, target] = mount.split(':');
    if (target === undefined) return []; // an anonymous volume
    return [{ type: /^[./~]/.test(source) ? ('bind' as const) : ('volume' as const), source, target }];
  });
}

/** The TypeScript or JavaScript file a service's command runs, if it names one. */
function entryFileOf(service: ComposeService): string | undefined {
  const words = typeof service.command === 'string' ? service.command.split(/\s+/) : (service.command ?? []);
  return words.find((word) => /\.(ts|js|mjs|cjs)$/.test(word));
}

/** Everything in a compose file that contradicts labflow's config schema or the repository; empty when consistent. */
function composeProblems(compose: ComposeFile, repo: Repository): string[] {
  const problems: string[] = [];
  const services = compose.services ?? {};
  const declaredVolumes = new Set(Object.keys(compose.volumes ?? {}));
  const known = new Set(repo.configKeys);

  for (const [name, service] of Object.entries(services)) {
    if (name.startsWith('labflow-')) {
      for (const key of Object.keys(environmentOf(service))) {
        if (!known.has(key)) problems.push(`${name}: environment key ${key} is not in common/config.ts`);
      }
      const entry = entryFileOf(service);
      if (entry && !repo.fileExists(entry)) problems.push(`${name}: runs ${entry}, which does not exist`);
    }
    for (const dependency of dependenciesOf(service)) {
      if (!(dependency in services)) problems.push(`${name}: depends on ${dependency}, which is not a service`);
    }
    if (service.build !== undefined) {
      const build = typeof service.build === 'string' ? { context: service.build } : service.build;
      const dockerfile = posix.join(build.context ?? '.', build.dockerfile ?? 'Dockerfile');
      if (!repo.fileExists(dockerfile)) problems.push(`${name}: builds from ${dockerfile}, which does not exist`);
    }
    const mounts = mountsOf(service);
    for (const mount of mounts) {
      if (mount.type === 'volume' && !declaredVolumes.has(mount.source)) {
        problems.push(`${name}: mounts volume ${mount.source}, which is not declared under volumes:`);
      }
      if (mount.type === 'bind' && !repo.fileExists(posix.normalize(mount.source))) {
        problems.push(`${name}: mounts ${mount.source}, which does not exist`);
      }
    }
    const dynamicConfig = environmentOf(service).DYNAMIC_CONFIG_FILE_PATH;
    if (dynamicConfig) {
      const mount = mounts.find((m) => m.type === 'bind' && dynamicConfig.startsWith(`${m.target}/`));
      const hostPath = mount && posix.join(mount.source, dynamicConfig.slice(mount.target.length + 1));
      if (!hostPath || !repo.fileExists(hostPath)) {
        problems.push(`${name}: DYNAMIC_CONFIG_FILE_PATH ${dynamicConfig} is not a file mounted from the repository`);
      }
    }
  }
  return problems;
}

/** Compose interpolation (${VAR}, ${VAR:-default}, ${VAR:?message}) replaced as a user's .env would fill it. */
function interpolated(env: Record<string, string>): Record<string, string> {
  const fill = (value: string) =>
    value.replace(/\$\{(\w+)(?::?[-?]([^}]*))?\}/g, (_, _name: string, fallback?: string) => fallback ?? 'secret');
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, fill(value)]));
}

describe('docker-compose.yml', () => {
  const compose = readCompose();
  const services = compose.services ?? {};
  const labflowServices = Object.entries(services).filter(([name]) => name.startsWith('labflow-'));

  it('agrees with common/config.ts and with the files of the repository', () => {
    assert.deepEqual(composeProblems(compose, repository), []);
  });

  it('has every part of the production deployment', () => {
    for (const name of [
      'postgres',
      'temporal',
      'temporal-admin-tools',
      'temporal-ui',
      'mailpit',
      'labflow-setup',
      'labflow-worker',
      'labflow-api',
    ]) {
      assert.ok(name in services, `missing service ${name}`);
    }
  });

  it('configures each labflow service with values that common/config.ts accepts, and none of the development shortcuts', () => {
    assert.equal(labflowServices.length, 3);
    for (const [name, service] of labflowServices) {
      const config = loadConfig(interpolated(environmentOf(service)));
      assert.equal(config.TEMPORAL_DEV_SERVER, false, `${name} would start a Temporal dev server`);
      assert.equal(config.PRIVATE_PG, false, `${name} would start a private PostgreSQL cluster`);
      assert.equal(config.SEED_DEV_USERS, false, `${name} would seed development users`);
      assert.match(config.DATABASE_URL, /@postgres:5432\//, `${name} does not use the postgres service`);
      assert.equal(config.TEMPORAL_ADDRESS, 'temporal:7233', `${name} does not use the temporal service`);
    }
  });

  it('runs the worker and the API as the application role, and gives the owner and superuser connections to the setup only', () => {
    const roleOf = (name: string) => {
      const env = interpolated(environmentOf(services[name]));
      const urls = databaseUrls(loadConfig(env));
      return { env, app: userOf(urls.app), owner: userOf(urls.owner), backup: userOf(urls.backup), admin: userOf(urls.admin) };
    };
    for (const name of ['labflow-worker', 'labflow-api']) {
      const { env, app } = roleOf(name);
      assert.equal(app, 'labflow_app', name);
      assert.equal(env.DATABASE_ADMIN_URL, undefined, `${name} holds the superuser's connection`);
      assert.equal(env.MIGRATION_DATABASE_URL, undefined, `${name} holds the owner's connection`);
    }
    assert.equal(roleOf('labflow-worker').backup, 'labflow_backup');
    assert.deepEqual(
      (({ app, owner, backup, admin }) => ({ app, owner, backup, admin }))(roleOf('labflow-setup')),
      { app: 'labflow_app', owner: 'labflow_owner', backup: 'labflow_backup', admin: 'postgres' },
    );
  });

  it('runs the API on all interfaces of its container, where the published port can reach it', () => {
    const config = loadConfig(interpolated(environmentOf(services['labflow-api'])));
    assert.equal(config.API_HOST, '0.0.0.0');
  });

  it('starts the worker and the API only after the migrations have run', () => {
    for (const name of ['labflow-worker', 'labflow-api']) {
      const deps = services[name].depends_on as Record<string, { condition?: string }>;
      assert.equal(deps['labflow-setup']?.condition, 'service_completed_successfully', name);
    }
  });
});

describe('the dynamic config of the production Temporal server', () => {
  it('is a YAML map from setting names to lists of values', () => {
    const settings = parse(readFileSync(join(root, 'temporal-config/dynamicconfig/production-sql.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.ok(Object.keys(settings).length > 0);
    for (const [key, values] of Object.entries(settings)) {
      assert.match(key, /^[a-z]+\.[A-Za-z.]+$/, key);
      assert.ok(
        Array.isArray(values) && values.every((v) => typeof v === 'object' && v !== null && 'value' in v),
        `${key} is not a list of { value }`,
      );
    }
  });

  it('keeps workflow IDs within the SQL visibility columns', () => {
    const settings = parse(readFileSync(join(root, 'temporal-config/dynamicconfig/production-sql.yaml'), 'utf8')) as Record<
      string,
      { value: unknown }[]
    >;
    assert.equal(settings['limit.maxIDLength'][0].value, 255);
  });
});

describe('the compose consistency check', () => {
  // Each rule is shown to fire, so an empty list of problems above means something.
  const good: ComposeFile = {
    services: {
      db: { image: 'postgres:15', volumes: ['db-data:/var/lib/postgresql/data'] },
      'labflow-api': {
        build: '.',
        command: ['node', '--import', 'tsx', 'api/server.ts'],
        environment: { API_PORT: '3000' },
        depends_on: ['db'],
      },
    },
    volumes: { 'db-data': null },
  };
  const repoWith = (...files: string[]): Repository => ({ configKeys: CONFIG_KEYS, fileExists: (path) => files.includes(path) });
  const fullRepo = repoWith(
    'Dockerfile',
    'api/server.ts',
    'temporal-config/dynamicconfig',
    'temporal-config/dynamicconfig/production-sql.yaml',
  );

  it('finds nothing wrong with a consistent compose file', () => {
    assert.deepEqual(composeProblems(good, fullRepo), []);
  });

  it('reports an environment key of a labflow service that common/config.ts does not read', () => {
    const bad = structuredClone(good);
    bad.services!['labflow-api'].environment = ['API_PORT=3000', 'API_PROT=3000'];
    assert.deepEqual(composeProblems(bad, fullRepo), ['labflow-api: environment key API_PROT is not in common/config.ts']);
  });

  it('leaves the environment of other services alone', () => {
    const other = structuredClone(good);
    other.services!.db.environment = { POSTGRES_PASSWORD: 'x' };
    assert.deepEqual(composeProblems(other, fullRepo), []);
  });

  it('reports a depends_on that names no service, in both of its forms', () => {
    const listForm = structuredClone(good);
    listForm.services!['labflow-api'].depends_on = ['db', 'temporal'];
    assert.deepEqual(composeProblems(listForm, fullRepo), ['labflow-api: depends on temporal, which is not a service']);
    const mapForm = structuredClone(good);
    mapForm.services!['labflow-api'].depends_on = { postgres: { condition: 'service_healthy' } };
    assert.deepEqual(composeProblems(mapForm, fullRepo), ['labflow-api: depends on postgres, which is not a service']);
  });

  it('reports a build whose Dockerfile is missing', () => {
    assert.deepEqual(composeProblems(good, repoWith('api/server.ts')), ['labflow-api: builds from Dockerfile, which does not exist']);
    const elsewhere = structuredClone(good);
    elsewhere.services!['labflow-api'].build = { context: 'deploy', dockerfile: 'api.Dockerfile' };
    assert.deepEqual(composeProblems(elsewhere, fullRepo), ['labflow-api: builds from deploy/api.Dockerfile, which does not exist']);
  });

  it('reports a labflow service that runs a file the repository does not have', () => {
    assert.deepEqual(composeProblems(good, repoWith('Dockerfile')), ['labflow-api: runs api/server.ts, which does not exist']);
  });

  it('reports a named volume that is not declared and a bind mount whose source is missing', () => {
    const bad = structuredClone(good);
    bad.services!.db.volumes = ['pgdata:/var/lib/postgresql/data', { type: 'bind', source: './nowhere', target: '/etc/x' }];
    assert.deepEqual(composeProblems(bad, fullRepo), [
      'db: mounts volume pgdata, which is not declared under volumes:',
      'db: mounts ./nowhere, which does not exist',
    ]);
  });

  it('reports a dynamic config path that no mount provides', () => {
    const temporal = (path: string): ComposeFile => ({
      services: {
        temporal: {
          environment: { DYNAMIC_CONFIG_FILE_PATH: path },
          volumes: ['./temporal-config/dynamicconfig:/etc/temporal/config/dynamicconfig:ro'],
        },
      },
    });
    const mountedRepo = repoWith('temporal-config/dynamicconfig', 'temporal-config/dynamicconfig/production-sql.yaml');
    assert.deepEqual(composeProblems(temporal('/etc/temporal/config/dynamicconfig/production-sql.yaml'), mountedRepo), []);
    assert.deepEqual(composeProblems(temporal('/etc/temporal/config/dynamicconfig/development.yaml'), mountedRepo), [
      'temporal: DYNAMIC_CONFIG_FILE_PATH /etc/temporal/config/dynamicconfig/development.yaml is not a file mounted from the repository',
    ]);
  });
});
