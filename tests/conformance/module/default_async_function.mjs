export default async (n) => {
  await null;
  return n * 2;
};
