await Promise.reject(new TypeError('tla failed'));
export default 1;
