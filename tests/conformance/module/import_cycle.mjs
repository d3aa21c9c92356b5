import { a } from "./a.js";
export default a();
