/** Replaced at build time by tsup (define); the fallback serves tests run from sources. */
declare const __PDC_VERSION__: string | undefined;
export const VERSION: string = typeof __PDC_VERSION__ === 'string' ? __PDC_VERSION__ : '0.0.0-dev';
