const x = 1;
throw new
  RangeError("split");
