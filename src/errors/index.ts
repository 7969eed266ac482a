export * from './codes.js';
export * from './pdc-error.js';
export * from './errno.js';
