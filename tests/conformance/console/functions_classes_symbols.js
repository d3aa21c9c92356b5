console.log(function foo() {}, class Bar {}, () => 1, Symbol('q'));
