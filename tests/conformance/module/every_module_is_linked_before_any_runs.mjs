import "./a.js";
import { zz } from "./b.js";
export default zz;
