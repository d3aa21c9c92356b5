export const ok = 1;
export default 1 +* 2;
