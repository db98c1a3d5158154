import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { parse } from 'yaml';
import { databaseUrls, ENVIRONMENT_KEYS, loadConfig, SECRET_SETTINGS, userOf } from '../common/config';
import { ALL_SEARCH_ATTRIBUTES } from '../common/search-attributes';
import { DYNAMIC_CONFIG_FILE, SERVER_CONFIG_TEMPLATE } from '../scripts/lib/temporal-cluster';

// docker-compose.yml cannot be run on the development machines (no Docker engine), so this keeps it honest: it
// must agree with common/config.ts and with the files of the repository.

const root = join(__dirname, '..');

type Mount = string | { type?: string; source?: string; target?: string };

type SecretRef = string | { source: string; target?: string };
type Port = string | { target?: number; published?: string | number; host_ip?: string };

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string; args?: Record<string, string> };
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  depends_on?: string[] | Record<string, unknown>;
  volumes?: Mount[];
  secrets?: SecretRef[];
  ports?: Port[];
  profiles?: string[];
}

interface ComposeFile {
  services?: Record<string, ComposeService>;
  volumes?: Record<string, unknown> | null;
  secrets?: Record<string, { file?: string }>;
}

interface Repository {
  /** Every environment variable common/config.ts reads (its keys and the _FILE forms of its secrets). */
  configKeys: readonly string[];
  /** Relative to the directory of the compose file. */
  fileExists(path: string): boolean;
}

const repository: Repository = { configKeys: ENVIRONMENT_KEYS, fileExists: (path) => existsSync(join(root, path)) };

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

/** The source a compiled entry point is built from (npm run build: dist/x/y.js from x/y.ts). */
const sourceOf = (entry: string) => (/^dist\/.*\.js$/.test(entry) ? entry.replace(/^dist\//, '').replace(/\.js$/, '.ts') : entry);

/** The secrets a service is given, by the name it sees under /run/secrets/ (the target, else the secret's name). */
function secretsOf(service: ComposeService): { source: string; target: string }[] {
  return (service.secrets ?? []).map((ref) =>
    typeof ref === 'string' ? { source: ref, target: ref } : { source: ref.source, target: ref.target ?? ref.source },
  );
}

/** The Go module of the labflow Temporal server: its folder may be absent from a branch that does not build it. */
const OPTIONAL_BUILD_CONTEXTS = ['temporal-server'];

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
      if (entry && !repo.fileExists(sourceOf(entry))) problems.push(`${name}: runs ${entry}, which does not exist`);
    }
    for (const dependency of dependenciesOf(service)) {
      if (!(dependency in services)) problems.push(`${name}: depends on ${dependency}, which is not a service`);
    }
    if (service.build !== undefined) {
      const build = typeof service.build === 'string' ? { context: service.build } : service.build;
      const context = posix.normalize(build.context ?? '.');
      const dockerfile = posix.join(context, build.dockerfile ?? 'Dockerfile');
      const optional = OPTIONAL_BUILD_CONTEXTS.includes(context) && !repo.fileExists(context);
      if (!optional && !repo.fileExists(dockerfile)) problems.push(`${name}: builds from ${dockerfile}, which does not exist`);
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
    const env = environmentOf(service);
    for (const key of ['DYNAMIC_CONFIG_FILE', 'TEMPORAL_CONFIG_TEMPLATE']) {
      if (env[key] && !hostPathOf(service, env[key], repo)) {
        problems.push(`${name}: ${key} ${env[key]} is not a file mounted from the repository`);
      }
    }
    const given = secretsOf(service);
    for (const secret of given) {
      if (!(secret.source in (compose.secrets ?? {})))
        problems.push(`${name}: uses secret ${secret.source}, which is not declared under secrets:`);
    }
    for (const [key, value] of Object.entries(env)) {
      const file = /^\/run\/secrets\/(.+)$/.exec(value)?.[1];
      if (file && !given.some((secret) => secret.target === file))
        problems.push(`${name}: ${key} names /run/secrets/${file}, a secret it is not given`);
    }
  }
  return problems;
}

/** The repository file a path inside a service's container is bind-mounted from, if it is one. */
function hostPathOf(service: ComposeService, containerPath: string, repo: Repository): string | undefined {
  const mount = mountsOf(service).find((m) => m.type === 'bind' && containerPath.startsWith(`${m.target}/`));
  const hostPath = mount && posix.normalize(posix.join(mount.source, containerPath.slice(mount.target.length + 1)));
  return hostPath && repo.fileExists(hostPath) ? hostPath : undefined;
}

const SECRET_NAME = /PASSWORD|PWD|SECRET|PAYLOAD_KEYS/;

/**
 * What a deployment must not do; empty when none: publish a port beyond the host's loopback, put a secret in an
 * environment value instead of a file, or run a development-only service (Mailpit) outside the dev profile.
 */
function hardeningProblems(compose: ComposeFile): string[] {
  const problems: string[] = [];
  const services = compose.services ?? {};
  const devOnly = (name: string) => (services[name]?.profiles ?? []).includes('dev');
  for (const [name, service] of Object.entries(services)) {
    for (const port of service.ports ?? []) {
      const hostIp = typeof port === 'string' ? (port.split(':').length === 3 ? port.split(':')[0] : undefined) : port.host_ip;
      if (hostIp !== '127.0.0.1') problems.push(`${name}: publishes ${JSON.stringify(port)} beyond the host's loopback`);
    }
    for (const key of Object.keys(environmentOf(service))) {
      const secret = SECRET_NAME.test(key) || (name.startsWith('labflow-') && (SECRET_SETTINGS as readonly string[]).includes(key));
      if (secret && !key.endsWith('_FILE'))
        problems.push(`${name}: ${key} is a secret in the environment; give it as a file (${key}_FILE)`);
    }
    if (name === 'mailpit' && !devOnly(name)) problems.push('mailpit: runs outside the dev profile');
    if (!devOnly(name)) {
      for (const dependency of dependenciesOf(service)) {
        if (devOnly(dependency)) problems.push(`${name}: depends on ${dependency}, which runs only in the dev profile`);
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

/** The default of a compose variable (`${NAME:-default}`) wherever the file uses it; fails when two disagree. */
function composeDefault(text: string, name: string): string {
  const values = new Set([...text.matchAll(new RegExp(`\\$\\{${name}:-([^}]+)\\}`, 'g'))].map((m) => m[1]));
  assert.equal(values.size, 1, `${name} has defaults ${[...values].join(', ')} in docker-compose.yml`);
  return [...values][0];
}

/** The default of a version variable of scripts/install-temporal-server.sh. */
function installerDefault(variable: string): string {
  const script = readFileSync(join(root, 'scripts', 'install-temporal-server.sh'), 'utf8');
  const match = new RegExp(`="\\$\\{${variable}:-([^}]+)\\}"`).exec(script);
  assert.ok(match, `scripts/install-temporal-server.sh has no default for ${variable}`);
  return match[1];
}

describe('docker-compose.yml', () => {
  const text = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
  const compose = readCompose();
  const services = compose.services ?? {};
  const labflowServices = Object.entries(services).filter(([name]) => name.startsWith('labflow-'));
  /** The labflow services that talk to Temporal (labflow-setup only migrates the database). */
  const runtimeServices = ['labflow-worker', 'labflow-api'];
  let secretsDir: string;

  // The secrets as scripts/compose-secrets.sh writes them, so each service's configuration is read as it would be.
  before(function () {
    this.timeout(120_000);
    secretsDir = mkdtempSync(join(tmpdir(), 'labflow-compose-secrets-'));
    execFileSync('bash', [join(root, 'scripts', 'compose-secrets.sh'), secretsDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  });
  after(() => rmSync(secretsDir, { recursive: true, force: true }));

  /** A service's environment with each /run/secrets/ path replaced by the file compose would mount there. */
  function environmentWithSecrets(name: string): Record<string, string> {
    const service = services[name];
    const given = secretsOf(service);
    const env = interpolated(environmentOf(service));
    return Object.fromEntries(
      Object.entries(env).map(([key, value]) => {
        const target = /^\/run\/secrets\/(.+)$/.exec(value)?.[1];
        const secret = target && given.find((s) => s.target === target);
        if (!secret) return [key, value];
        const file = compose.secrets?.[secret.source]?.file?.replace(/^\$\{LABFLOW_SECRETS:-\.\/secrets\}/, secretsDir);
        return [key, file ?? value];
      }),
    );
  }
  const configOf = (name: string) => loadConfig(environmentWithSecrets(name));

  it('agrees with common/config.ts and with the files of the repository', () => {
    assert.deepEqual(composeProblems(compose, repository), []);
  });

  it('publishes nothing beyond the host, keeps every secret in a file, and runs Mailpit only in the dev profile', () => {
    assert.deepEqual(hardeningProblems(compose), []);
    assert.ok(
      Object.values(services).some((service) => service.ports?.length),
      'the API and the Web UI are published, on loopback',
    );
  });

  it('has every part of the production deployment', () => {
    for (const name of [
      'postgres',
      'temporal-db-setup',
      'temporal-schema',
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

  it('runs the compiled build in every labflow service', () => {
    for (const [name, service] of labflowServices) {
      assert.match(entryFileOf(service) ?? '', /^dist\/.+\.js$/, `${name} does not run node dist/...`);
      assert.equal((service.command as string[])[0], 'node', name);
    }
  });

  it('configures each labflow service with values and secret files that common/config.ts accepts, and none of the development shortcuts', () => {
    assert.equal(labflowServices.length, 3);
    for (const [name] of labflowServices) {
      const config = configOf(name);
      assert.equal(config.TEMPORAL_DEV_SERVER, false, `${name} would start a Temporal dev server`);
      assert.equal(config.PRIVATE_PG, false, `${name} would start a private PostgreSQL cluster`);
      assert.equal(config.SEED_DEV_USERS, false, `${name} would seed development users`);
      assert.match(config.DATABASE_URL, /@postgres:5432\//, `${name} does not use the postgres service`);
    }
    for (const name of runtimeServices) {
      const config = configOf(name);
      assert.equal(config.TEMPORAL_ADDRESS, 'temporal:7233', `${name} does not use the temporal service`);
      assert.ok(config.PAYLOAD_KEYS_FILE && config.AUDIT_CHAIN_KEY_FILE, `${name} lacks the payload keys or the audit chain key`);
    }
    // On all interfaces of its container, where the published port can reach it.
    assert.equal(configOf('labflow-api').API_HOST, '0.0.0.0');
  });

  it('runs the worker and the API as the application role, and gives the owner and superuser connections to the setup only', () => {
    const roleOf = (name: string) => {
      const urls = databaseUrls(configOf(name));
      return { app: userOf(urls.app), owner: userOf(urls.owner), backup: userOf(urls.backup), admin: userOf(urls.admin) };
    };
    for (const name of ['labflow-worker', 'labflow-api']) {
      assert.equal(roleOf(name).app, 'labflow_app', name);
      const env = environmentOf(services[name]);
      assert.equal(env.DATABASE_ADMIN_URL_FILE, undefined, `${name} holds the superuser's connection`);
      assert.equal(env.MIGRATION_DATABASE_URL_FILE, undefined, `${name} holds the owner's connection`);
      const secrets = secretsOf(services[name]).map((secret) => secret.source);
      for (const forbidden of ['database-admin-url', 'database-owner-url', 'postgres-password', 'temporal-db-password']) {
        assert.ok(!secrets.includes(forbidden), `${name} is given ${forbidden}`);
      }
    }
    assert.equal(roleOf('labflow-worker').backup, 'labflow_backup');
    assert.deepEqual(roleOf('labflow-setup'), { app: 'labflow_app', owner: 'labflow_owner', backup: 'labflow_backup', admin: 'postgres' });
  });

  it("runs Temporal as its own PostgreSQL role, which only Temporal's services know", () => {
    assert.equal(environmentOf(services.temporal).DB_USER, 'temporal');
    assert.equal(environmentOf(services['temporal-schema']).SQL_USER, 'temporal');
    const holders = Object.entries(services)
      .filter(([, service]) => secretsOf(service).some((secret) => secret.source === 'temporal-db-password'))
      .map(([name]) => name)
      .sort();
    assert.deepEqual(holders, ['temporal', 'temporal-db-setup', 'temporal-schema']);
  });

  it('speaks mTLS between labflow, the Web UI, the admin tools and Temporal', () => {
    for (const name of runtimeServices) {
      const config = configOf(name);
      for (const file of [config.TEMPORAL_TLS_CA_FILE, config.TEMPORAL_TLS_CERT_FILE, config.TEMPORAL_TLS_KEY_FILE]) {
        assert.ok(file && existsSync(file), `${name}: ${file} is not one of the certificates compose-secrets.sh makes`);
      }
    }
    for (const name of ['temporal-ui', 'temporal-admin-tools']) {
      const env = environmentOf(services[name]);
      for (const key of ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY'])
        assert.match(env[key] ?? '', /^\/run\/secrets\//, `${name}: ${key}`);
    }
    const template = readFileSync(SERVER_CONFIG_TEMPLATE, 'utf8');
    assert.match(template, /requireClientAuth: true/, 'the frontend asks every client for a certificate');
    assert.deepEqual(services.temporal.ports ?? [], [], 'the frontend is published');
  });

  it('keeps write actions off in the Web UI, behind sign-in', () => {
    const env = environmentOf(services['temporal-ui']);
    assert.equal(env.TEMPORAL_DISABLE_WRITE_ACTIONS, 'true');
    assert.equal(env.TEMPORAL_AUTH_ENABLED, 'true');
    assert.match(env.TEMPORAL_AUTH_PROVIDER_URL, /\$\{TEMPORAL_UI_OIDC_ISSUER:\?/, 'the identity provider is required');
    assert.ok(secretsOf(services['temporal-ui']).some((secret) => secret.source === 'temporal-ui-oidc-client-secret'));
  });

  it('keeps backups on a volume of their own, writable by the node user, and encrypted', () => {
    const worker = services['labflow-worker'];
    const config = configOf('labflow-worker');
    const mount = mountsOf(worker).find((m) => m.target === config.BACKUP_DIR);
    assert.equal(mount?.type, 'volume', `BACKUP_DIR ${config.BACKUP_DIR} is not a named volume`);
    assert.ok(config.BACKUP_ENCRYPTION_KEY_FILE && /^[0-9a-f]{64}$/.test(readFileSync(config.BACKUP_ENCRYPTION_KEY_FILE, 'utf8').trim()));
    // A new named volume takes the ownership of the image's folder: the Dockerfile makes it the node user's.
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    assert.ok(dockerfile.includes(`mkdir -p ${config.BACKUP_DIR}`), `the image does not create ${config.BACKUP_DIR}`);
    assert.match(dockerfile, /chown -R node:node \/var\/lib\/labflow/);
    assert.ok(config.BACKUP_DIR.startsWith('/var/lib/labflow/'));
    assert.match(dockerfile, /^USER node$/m);
  });

  it('runs the same Temporal server version as the cluster script, and the same Web UI version', () => {
    assert.equal(composeDefault(text, 'TEMPORAL_VERSION'), installerDefault('TEMPORAL_SERVER_VERSION'));
    assert.equal(composeDefault(text, 'TEMPORAL_UI_VERSION'), installerDefault('TEMPORAL_UI_VERSION'));
    assert.equal(posix.normalize((services.temporal.build as { context: string }).context), 'temporal-server');
  });

  it('starts the server from temporal-config/ as the cluster script does: the same template, every placeholder given, the same dynamic config', () => {
    const env = environmentOf(services.temporal);
    assert.equal(hostPathOf(services.temporal, env.TEMPORAL_CONFIG_TEMPLATE, repository), relative(root, SERVER_CONFIG_TEMPLATE));
    assert.equal(hostPathOf(services.temporal, env.DYNAMIC_CONFIG_FILE, repository), relative(root, DYNAMIC_CONFIG_FILE));
    const placeholders = new Set([...readFileSync(SERVER_CONFIG_TEMPLATE, 'utf8').matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]));
    const given = new Set(Object.keys(env).map((key) => (key === 'DB_PASSWORD_FILE' ? 'DB_PASSWORD' : key)));
    assert.deepEqual(
      [...placeholders].filter((name) => !given.has(name)),
      [],
    );
    assert.equal(env.FRONTEND_PORT, '7233');
    assert.equal(env.FRONTEND_BIND_IP, '0.0.0.0', 'the frontend must answer the other containers');
  });

  it('registers the search attributes the dev server is started with', () => {
    const json = JSON.parse(readFileSync(join(root, 'temporal-config', 'search-attributes.json'), 'utf8')) as Record<string, string>;
    const typeName = (type: string) =>
      type
        .split('_')
        .map((w) => w[0] + w.slice(1).toLowerCase())
        .join('');
    assert.deepEqual(json, Object.fromEntries(ALL_SEARCH_ATTRIBUTES.map((key) => [key.name, typeName(key.type)])));
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
  const repoWith = (...files: string[]): Repository => ({ configKeys: ENVIRONMENT_KEYS, fileExists: (path) => files.includes(path) });
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

  it('reports a dynamic config or server template that no mount provides', () => {
    const temporal = (path: string): ComposeFile => ({
      services: {
        temporal: {
          environment: { DYNAMIC_CONFIG_FILE: path },
          volumes: ['./temporal-config:/etc/labflow/temporal-config:ro'],
        },
      },
    });
    const mountedRepo = repoWith('temporal-config', 'temporal-config/dynamicconfig/production-sql.yaml');
    assert.deepEqual(composeProblems(temporal('/etc/labflow/temporal-config/dynamicconfig/production-sql.yaml'), mountedRepo), []);
    assert.deepEqual(composeProblems(temporal('/etc/labflow/temporal-config/dynamicconfig/development.yaml'), mountedRepo), [
      'temporal: DYNAMIC_CONFIG_FILE /etc/labflow/temporal-config/dynamicconfig/development.yaml is not a file mounted from the repository',
    ]);
  });

  it('reports a secret that is not declared, and a /run/secrets/ path the service is not given', () => {
    const bad = structuredClone(good);
    bad.secrets = { 'app-url': { file: './secrets/app-url' } };
    bad.services!['labflow-api'].secrets = ['app-url', { source: 'ca', target: 'ca.pem' }];
    bad.services!['labflow-api'].environment = {
      DATABASE_URL_FILE: '/run/secrets/app-url',
      PAYLOAD_KEYS_FILE: '/run/secrets/payload-keys',
    };
    assert.deepEqual(composeProblems(bad, fullRepo), [
      'labflow-api: uses secret ca, which is not declared under secrets:',
      'labflow-api: PAYLOAD_KEYS_FILE names /run/secrets/payload-keys, a secret it is not given',
    ]);
  });

  it('lets a build context of the Temporal server be absent, and no other', () => {
    const server = structuredClone(good);
    server.services!.temporal = { build: { context: './temporal-server' } };
    assert.deepEqual(composeProblems(server, fullRepo), []);
    assert.deepEqual(composeProblems(server, repoWith('Dockerfile', 'api/server.ts', 'temporal-server')), [
      'temporal: builds from temporal-server/Dockerfile, which does not exist',
    ]);
    server.services!.temporal = { build: { context: './other' } };
    assert.deepEqual(composeProblems(server, fullRepo), ['temporal: builds from other/Dockerfile, which does not exist']);
  });

  it('accepts a compiled entry point whose source exists', () => {
    const compiled = structuredClone(good);
    compiled.services!['labflow-api'].command = ['node', 'dist/api/server.js'];
    assert.deepEqual(composeProblems(compiled, fullRepo), []);
    compiled.services!['labflow-api'].command = ['node', 'dist/api/missing.js'];
    assert.deepEqual(composeProblems(compiled, fullRepo), ['labflow-api: runs dist/api/missing.js, which does not exist']);
  });
});

describe('the compose hardening check', () => {
  it('finds nothing wrong with loopback ports, secret files and a dev-only Mailpit', () => {
    const safe: ComposeFile = {
      services: {
        api: {
          ports: ['127.0.0.1:3000:3000', { target: 8080, published: 8080, host_ip: '127.0.0.1' }],
          environment: { DATABASE_URL_FILE: '/run/secrets/x' },
        },
        mailpit: { profiles: ['dev'], ports: ['127.0.0.1:8025:8025'] },
      },
    };
    assert.deepEqual(hardeningProblems(safe), []);
  });

  it('reports a port published on every interface, in both of its forms', () => {
    const open: ComposeFile = { services: { temporal: { ports: ['7233:7233', { target: 8080, published: 8080 }, '0.0.0.0:9090:9090'] } } };
    assert.deepEqual(hardeningProblems(open), [
      `temporal: publishes "7233:7233" beyond the host's loopback`,
      `temporal: publishes {"target":8080,"published":8080} beyond the host's loopback`,
      `temporal: publishes "0.0.0.0:9090:9090" beyond the host's loopback`,
    ]);
  });

  it('reports secrets given as environment values', () => {
    const plain: ComposeFile = {
      services: {
        postgres: { environment: { POSTGRES_PASSWORD: 'x', POSTGRES_PASSWORD_FILE: '/run/secrets/p' } },
        'labflow-worker': {
          environment: { DATABASE_URL: 'postgres://a:b@postgres/labflow', PAYLOAD_KEYS: 'k:x', SMTP_URL_FILE: '/run/secrets/s' },
        },
        ui: { environment: ['TEMPORAL_AUTH_CLIENT_SECRET=x'] },
      },
    };
    assert.deepEqual(hardeningProblems(plain), [
      'postgres: POSTGRES_PASSWORD is a secret in the environment; give it as a file (POSTGRES_PASSWORD_FILE)',
      'labflow-worker: DATABASE_URL is a secret in the environment; give it as a file (DATABASE_URL_FILE)',
      'labflow-worker: PAYLOAD_KEYS is a secret in the environment; give it as a file (PAYLOAD_KEYS_FILE)',
      'ui: TEMPORAL_AUTH_CLIENT_SECRET is a secret in the environment; give it as a file (TEMPORAL_AUTH_CLIENT_SECRET_FILE)',
    ]);
  });

  it('reports Mailpit outside the dev profile, and a production service that needs a dev-only one', () => {
    assert.deepEqual(hardeningProblems({ services: { mailpit: {} } }), ['mailpit: runs outside the dev profile']);
    assert.deepEqual(hardeningProblems({ services: { mailpit: { profiles: ['dev'] }, worker: { depends_on: ['mailpit'] } } }), [
      'worker: depends on mailpit, which runs only in the dev profile',
    ]);
  });
});
