/**
 * Writes the OpenAPI document the API serves at /api/v1/openapi.json to a file (or stdout), without a database or
 * Temporal: the route specs alone make it. `npm run openapi:lint` lints it with Redocly's recommended rules.
 */
import { writeFileSync } from 'node:fs';
import { apiDocument } from '../api/app';

const out = JSON.stringify(apiDocument(), null, 2);
if (process.argv[2]) writeFileSync(process.argv[2], out);
else process.stdout.write(out);
