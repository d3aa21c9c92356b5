const a = { name: 'a' };
a.self = a;
a
