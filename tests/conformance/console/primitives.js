console.log(true, false, null, undefined);
console.log(null);
console.log(undefined);
console.log(-0);
console.log();
