const o = { a: 1 };
o.o = o;
throw o;
