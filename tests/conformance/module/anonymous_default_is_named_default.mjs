import f from "./f.js";
import C from "./c.js";
import g from "./g.js";
export default [f.name, C.name, g.name, f(), new C().v, g()];
