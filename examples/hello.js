// Run me: cargo run --release -- run examples/hello.js
const name = (input && input.name) || "world";
console.log(`hello, ${name}!`);
({ greeted: name, at: "palisade" });
