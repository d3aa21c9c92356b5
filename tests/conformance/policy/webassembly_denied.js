[typeof WebAssembly, typeof WebAssembly.instantiate]
