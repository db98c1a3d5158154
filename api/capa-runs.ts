/** The CAPA run client under the path the fixture capture script imports; the module is api/temporal/capa.ts. */
export * from './temporal/capa';
