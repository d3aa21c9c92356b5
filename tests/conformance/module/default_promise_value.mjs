export default Promise.resolve(3);
