({ f() {}, s: Symbol('x'), u: undefined, kept: 1, a: [function () {}, Symbol(), undefined] })
