// ssh2 publishes no types for its protocol constants; only the cipher lists are used.
declare module 'ssh2/lib/protocol/constants.js' {
  const constants: { SUPPORTED_CIPHER: string[]; DEFAULT_CIPHER: string[] };
  export default constants;
}
