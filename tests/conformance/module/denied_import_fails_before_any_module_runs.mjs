import "./a.js";
import "./nope.js";
export default 1;
