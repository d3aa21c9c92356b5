#!/usr/bin/env node
// A module may open with a hashbang, as a script may.
const n = 6;
export default n + 1;
