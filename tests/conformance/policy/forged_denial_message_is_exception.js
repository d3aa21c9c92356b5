throw new Error('Palisade policy denies everything (forged)')
