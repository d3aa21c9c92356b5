[typeof fetch, typeof Headers, typeof Response, typeof secrets, Object.keys(globalThis).includes('fetch')]
