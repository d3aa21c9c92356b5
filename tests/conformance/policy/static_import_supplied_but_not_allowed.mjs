import { v } from './util.js';
export default v;
