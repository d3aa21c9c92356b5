const o = { toString() { return '<' + this + '>'; } };
String(o);
