import * as ns from "./a.js";
export default Object.keys(ns);
