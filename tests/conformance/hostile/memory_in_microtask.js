Promise.resolve().then(() => {
  const a = [];
  while (true) a.push([a.length]);
});
1
