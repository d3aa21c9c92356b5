[typeof crypto, typeof globalThis.crypto, 'crypto' in globalThis]
