await import("./nope.js")
{ }
