// A lone surrogate in the result is named, with where it is in the result's JSON text.
({ list: ["ok", "a\ud800b"] });
