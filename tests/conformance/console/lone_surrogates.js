// A lone surrogate cannot be UTF-8: every engine prints one U+FFFD for it, and a pair as its
// character.
console.log("x\udc00y");
console.log({ a: "\ud800" });
console.log("%s!", "\ud800b");
console.error("\ud83d\ude00 pair");
1
