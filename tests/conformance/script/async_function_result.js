(async () => {
  await null;
  const x = await Promise.resolve(20);
  return { a: x + 1 };
})()
