export * from './errors.js';
export * from './log.js';
export * from './files.js';
export * from './secrets.js';
export * from './cli.js';
export * from './shell.js';
export * from './host.js';
export * from './lock.js';
