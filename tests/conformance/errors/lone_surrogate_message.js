throw new Error("a\ud800b");
