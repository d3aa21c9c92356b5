(async () => {
  let n = 0;
  for (let i = 0; i < 1000; i++) {
    n += await i;
  }
  return n;
})()
