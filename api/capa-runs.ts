export * from './temporal/capa';
