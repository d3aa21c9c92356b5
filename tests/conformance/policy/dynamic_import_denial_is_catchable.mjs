export default async () => {
  try {
    await import('./util.js');
    return 'imported';
  } catch (e) {
    return [e instanceof Error, e.message.startsWith('Palisade policy denies'), (await import('./other.js')).v];
  }
};
