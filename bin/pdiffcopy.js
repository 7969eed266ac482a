#!/usr/bin/env node
// The launcher. Everything up to the version check is ES5, valid both as a script
// and as a module, so that an old Node reports the version instead of a SyntaxError.
'use strict';
var MIN_NODE = 20;
var found = process.versions.node;
if (Number(found.split('.')[0]) < MIN_NODE) {
  process.stderr.write(
    'pdiffcopy: error: needs Node.js ' + MIN_NODE + ' or later, found ' + found + ' (' + process.execPath + ')\n' +
      'pdiffcopy: hint: install Node.js ' + MIN_NODE + ' or later on this host (remote hosts need only Node.js 12)\n'
  );
  process.exit(2);
}
import('./start.js');
