export * from './activity-options';
export * from './children';
export * from './guards';
export * from './outbox';
export * from './proxies';
export * from './time';
export * from './proof';
export * from './versioning';
