console.log("never printed");
import "./a.js";
