async function work() {
  await null;
  throw new Error('late failure');
}
work()
