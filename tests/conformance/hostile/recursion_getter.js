const o = { get x() { return this.x + 1; } };
o.x;
