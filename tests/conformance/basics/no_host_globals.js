[typeof require, typeof process, typeof std, typeof os, typeof Deno, typeof Bun, typeof module, typeof exports]
