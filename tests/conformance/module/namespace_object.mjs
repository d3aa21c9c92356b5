import * as ns from "./a.js";
const r = [];
try { ns.x = 2; r.push("assigned"); } catch (e) { r.push(e.name); }
try { ns.added = 1; r.push("added"); } catch (e) { r.push(e.name); }
try { delete ns.x; r.push("deleted"); } catch (e) { r.push(e.name); }
export default [r, Object.keys(ns), Object.isExtensible(ns), Object.getPrototypeOf(ns), String(ns[Symbol.toStringTag]), ns.x];
