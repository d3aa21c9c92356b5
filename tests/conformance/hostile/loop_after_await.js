(async () => {
  await null;
  while (true) {}
})()
