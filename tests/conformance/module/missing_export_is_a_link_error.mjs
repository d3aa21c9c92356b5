console.log("never printed: linking fails before any module runs");
import { nope } from "./a.js";
export default typeof nope;
