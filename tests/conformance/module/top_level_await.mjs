const v = await Promise.resolve(9);
console.log('awaited', v);
export default v + 1;
