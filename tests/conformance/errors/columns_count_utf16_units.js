// Columns count UTF-16 code units, as V8 does (QuickJS-NG counts UTF-8 bytes).
const text = "日本語 é 😀"; undefinedThing;
