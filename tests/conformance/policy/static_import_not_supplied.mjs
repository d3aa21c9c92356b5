import x from './missing.js';
export default x;
