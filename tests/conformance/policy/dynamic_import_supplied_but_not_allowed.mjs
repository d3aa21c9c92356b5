export default async () => (await import('./util.js')).v;
